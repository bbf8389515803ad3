# Script mode: no handler, so this runs once per invocation as a plain program.
# The request body is on stdin; what it prints is the response.
import sys

name = sys.stdin.read().strip() or "stranger"
print(f"Hello, {name}!")
