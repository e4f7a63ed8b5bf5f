// Package docs_test keeps the repository's citations of its own design
// resolvable inside a clone: every "docs/design.md §N" or
// "docs/aws-facts.md §N" in a code comment, SQL script, Makefile or
// README names a file in docs/ and a section heading that file has, and
// nothing refers to the design documents that used to live outside the
// repository.
package docs_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/repo"
)

// outsidePath is the old home of the design, outside the repository;
// spelled in two parts so that this file does not match itself.
var outsidePath = "shared" + "/docs"

// citation matches a reference to a design document with one or more
// section numbers, such as "docs/design.md §3.4–§3.6, §5", and the short
// form without "docs/" and ".md" that only the pages in docs/ may use.
var citation = regexp.MustCompile(`(docs/)?\b(design|aws-facts|architecture)(\.md)?((?:\s*(?:,|–|-|and|or)?\s*§\s*\d+(?:\.\d+)*)+)`)

var sectionNumber = regexp.MustCompile(`§\s*(\d+(?:\.\d+)*)`)

// docLink matches any mention of a file in docs/.
var docLink = regexp.MustCompile(`\bdocs/([A-Za-z0-9_-]+\.md)\b`)

// heading matches a numbered Markdown heading: "## 3." or "### 3.6 Versions".
var heading = regexp.MustCompile(`(?m)^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s`)

// commentBreak joins the lines of a comment so that a citation broken
// across comment lines is seen whole.
var commentBreak = regexp.MustCompile(`\s*\n[ \t]*(?://|--|#)?[ \t]*`)

// sections returns, per file in docs/, the section numbers its headings
// define.
func sections(t *testing.T, docsDir string) map[string]map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(docsDir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(docsDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		nums := map[string]bool{}
		for _, m := range heading.FindAllStringSubmatch(string(b), -1) {
			nums[m[1]] = true
		}
		out[e.Name()] = nums
	}
	return out
}

// checkText reports what is wrong with the citations in text, which comes
// from file name; inDocs allows the short forms used inside docs/.
func checkText(name, text string, inDocs bool, secs map[string]map[string]bool) []string {
	var problems []string
	if strings.Contains(text, outsidePath) {
		problems = append(problems, fmt.Sprintf("%s refers to %s, outside the repository: cite docs/ instead", name, outsidePath))
	}
	for _, m := range docLink.FindAllStringSubmatch(text, -1) {
		if _, ok := secs[m[1]]; !ok {
			problems = append(problems, fmt.Sprintf("%s refers to docs/%s, which does not exist", name, m[1]))
		}
	}
	joined := commentBreak.ReplaceAllString(text, " ")
	cited := make([]bool, len(joined))
	for _, loc := range citation.FindAllStringSubmatchIndex(joined, -1) {
		for i := loc[0]; i < loc[1]; i++ {
			cited[i] = true
		}
		whole := joined[loc[0]:loc[1]]
		full := loc[2] >= 0 && loc[6] >= 0 // "docs/" and ".md" both present
		file := joined[loc[4]:loc[5]] + ".md"
		if !full && !inDocs {
			problems = append(problems, fmt.Sprintf("%s: %q does not resolve in a clone: write docs/%s §N", name, whole, file))
			continue
		}
		nums, ok := secs[file]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: %q cites docs/%s, which does not exist", name, whole, file))
			continue
		}
		for _, n := range sectionNumber.FindAllStringSubmatch(joined[loc[8]:loc[9]], -1) {
			if !nums[n[1]] {
				problems = append(problems, fmt.Sprintf("%s: %q cites §%s, which docs/%s has no heading for", name, whole, n[1], file))
			}
		}
	}
	// A section sign outside any citation names no document, except
	// inside docs/, where it is a section of the same file, and the
	// placeholder "§N".
	own := secs[filepath.Base(name)]
	for i := strings.Index(joined, "§"); i >= 0; {
		rest := joined[i+len("§"):]
		if !cited[i] && !strings.HasPrefix(rest, "N") {
			context := joined[max(0, i-20):min(len(joined), i+12)]
			n := sectionNumber.FindStringSubmatch(joined[i:])
			switch {
			case !inDocs:
				problems = append(problems, fmt.Sprintf("%s: section sign without a document in %q: cite docs/design.md §N or docs/aws-facts.md §N", name, context))
			case n == nil || !own[n[1]]:
				problems = append(problems, fmt.Sprintf("%s: %q cites a section this file has no heading for", name, context))
			}
		}
		next := strings.Index(joined[i+len("§"):], "§")
		if next < 0 {
			break
		}
		i += len("§") + next
	}
	return problems
}

// goComments returns the text of every comment in a Go file.
func goComments(path string) (string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, g := range f.Comments {
		b.WriteString(commentGroupText(g))
		b.WriteString("\n\n")
	}
	return b.String(), nil
}

func commentGroupText(g *ast.CommentGroup) string {
	var lines []string
	for _, c := range g.List {
		lines = append(lines, c.Text)
	}
	return strings.Join(lines, "\n")
}

// checked reports whether the repository file at rel is one whose
// citations must resolve, and whether only its comments count (Go).
func checked(rel string) (check, commentsOnly bool) {
	base := filepath.Base(rel)
	switch {
	case strings.HasSuffix(base, ".go"):
		return true, true
	case strings.HasSuffix(base, ".sql"), strings.HasSuffix(base, ".md"),
		strings.HasSuffix(base, ".yml"), strings.HasSuffix(base, ".yaml"),
		base == "Makefile", base == "cdk.json", base == "package.json":
		return true, false
	case strings.HasPrefix(rel, ".ci"+string(filepath.Separator)):
		return true, false
	}
	return false, false
}

var skipDirs = map[string]bool{".git": true, "node_modules": true, "cdk.out": true, "build": true}

// TestDocCitationsResolve fails when a comment, script or README cites a
// design document or section that does not exist in docs/, cites one in a
// form a clone cannot follow, or refers to the old design location.
func TestDocCitationsResolve(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	secs := sections(t, filepath.Join(root, "docs"))
	for _, want := range []string{"design.md", "aws-facts.md", "architecture.md"} {
		if _, ok := secs[want]; !ok {
			t.Errorf("docs/%s is missing", want)
		}
	}
	var problems []string
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		check, commentsOnly := checked(rel)
		if !check {
			return nil
		}
		files++
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(raw), outsidePath) && rel != filepath.Join("docs", "docs_test.go") {
			problems = append(problems, fmt.Sprintf("%s refers to %s, outside the repository", rel, outsidePath))
		}
		text := string(raw)
		if commentsOnly {
			if text, err = goComments(path); err != nil {
				// Deliberately broken Go in test data is not ours to check.
				if strings.Contains(rel, "testdata") {
					return nil
				}
				return err
			}
		}
		inDocs := filepath.Dir(rel) == "docs" && strings.HasSuffix(rel, ".md")
		for _, p := range checkText(rel, text, inDocs, secs) {
			if !strings.Contains(p, "outside the repository: cite docs/") {
				problems = append(problems, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("checked only %d files under %s: is the walk broken?", files, root)
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

// TestCheckTextCatches shows what the check refuses, so that a regression
// in the matcher cannot make TestDocCitationsResolve pass vacuously.
func TestCheckTextCatches(t *testing.T) {
	secs := map[string]map[string]bool{
		"design.md":       {"3": true, "3.4": true, "3.5": true, "3.6": true, "5": true},
		"aws-facts.md":    {"1": true},
		"architecture.md": {},
	}
	for _, tc := range []struct {
		name, text string
		inDocs     bool
		bad        bool
	}{
		{"full form", "// the record (docs/design.md §3.4–§3.6, §5).", false, false},
		{"facts", "// DMS writes JSON (docs/aws-facts.md §1).", false, false},
		{"broken across lines", "// the flat record of\n// docs/design.md §3.4 that", false, false},
		{"short form inside docs", "see design §3.5 and aws-facts §1", true, false},
		{"file without section", "see docs/architecture.md", false, false},
		{"short form outside docs", "// the record (design §3.4).", false, true},
		{"short facts outside docs", "// limits (aws-facts.md §1).", false, true},
		{"section split from name", "// the flat record of design\n// §3.3 that", false, true},
		{"missing section", "// see docs/design.md §42", false, true},
		{"missing subsection in a list", "// see docs/design.md §3.4, §3.9", false, true},
		{"missing file", "// see docs/plan.md", false, true},
		{"missing file with section", "// see docs/plan.md §1", false, true},
		{"bare section sign", "// the enriched record (§3.4)", false, true},
		{"old location", "see ../" + outsidePath + "/design.md", false, true},
		{"own section inside docs", "as §3.6 says", true, false},
		{"missing own section inside docs", "as §7 says", true, true},
		{"placeholder", "cite it as docs/design.md §N", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "x.go"
			if tc.inDocs {
				name = "docs/design.md"
			}
			problems := checkText(name, tc.text, tc.inDocs, secs)
			if got := len(problems) > 0; got != tc.bad {
				t.Errorf("checkText(%q) problems = %q, want bad = %v", tc.text, problems, tc.bad)
			}
		})
	}
}
