// Command lkc-codegen writes the generated codecs of lkc's formats; the
// //go:generate lines beside the types run it. See internal/codegen.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/lkc-containers/lkc/internal/codegen"
)

func main() {
	name, src, err := codegen.Run(".", os.Args[1:])
	if err == nil {
		err = os.WriteFile(filepath.Clean(name), src, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lkc-codegen:", err)
		os.Exit(1)
	}
}
