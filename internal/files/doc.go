// Package files holds the two file operations the tree shares: WriteAtomic, which writes
// a file through a temporary file in the same directory and renames it into place (on any
// error the temporary file is removed and the target is left untouched: no half-written
// output), and SHA256, the one file hash (model sets, plans, inputs).
package files
