// Command hello is a stand-in function for the builder's tests.
package main

import (
	"fmt"

	"example.com/fixture/internal/greet"
)

func main() { fmt.Println(greet.Hello()) }
