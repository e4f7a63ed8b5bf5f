// Package greet is a dependency of the fixture function, so a change to it
// must trigger a rebuild.
package greet

// Hello returns a greeting.
func Hello() string { return "hello" }
