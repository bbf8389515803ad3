// A Go function, built with GOOS=wasip1 GOARCH=wasm.
package main

import "fmt"

func main() {
	fmt.Println("Hello from Go!")
}
