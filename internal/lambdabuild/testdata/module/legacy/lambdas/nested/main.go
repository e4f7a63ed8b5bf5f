// Command nested is a stand-in function kept in a tree of its own
// (<tree>/lambdas/<name>), as the KDA SQL path keeps its functions.
package main

import (
	"fmt"

	"example.com/fixture/internal/greet"
)

func main() { fmt.Println(greet.Hello()) }
