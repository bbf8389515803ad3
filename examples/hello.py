def handle(request):
    return {"message": "Hello, World!", "data": request.get_json()}
