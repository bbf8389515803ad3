def handle(request):
    data = request.get_json()
    a = data.get('a', 0)
    b = data.get('b', 0)
    operation = data.get('operation', 'add')

    if operation == 'add':
        result = a + b
    elif operation == 'multiply':
        result = a * b
    else:
        return {"error": "Unsupported operation"}

    return {
        "result": result,
        "operation": operation,
        "inputs": {"a": a, "b": b}
    }
