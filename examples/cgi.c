// A CGI-style function: it sets its own status and headers, and reads the request
// from the CGI environment (REQUEST_METHOD, PATH_INFO, QUERY_STRING, HTTP_*).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name) {
    const char *value = getenv(name);
    return value ? value : "";
}

int main(void) {
    const char *path = env("PATH_INFO");
    if (strcmp(path, "/missing") == 0) {
        printf("Status: 404 Not Found\r\n");
        printf("Content-Type: text/plain\r\n\r\n");
        printf("nothing at %s\n", path);
        return 0;
    }
    char body[4096];
    size_t n = fread(body, 1, sizeof body - 1, stdin);
    body[n] = '\0';
    printf("Content-Type: application/json\r\n");
    printf("X-Powered-By: minifaas\r\n\r\n");
    printf("{\"method\":\"%s\",\"path\":\"%s\",\"query\":\"%s\",\"agent\":\"%s\",\"body_bytes\":%zu}\n",
           env("REQUEST_METHOD"), path, env("QUERY_STRING"), env("HTTP_USER_AGENT"), n);
    return 0;
}
