// Package files holds the file operations the tree shares: WriteAtomic, which writes a
// file through a temporary file in the same directory and renames it into place (on any
// error the temporary file is removed and the target is left untouched: no half-written
// output), and SHA256 (with Hash, which also returns the size), the one file hash of the
// tree (model sets, plans, inputs, wheels and jars).
package files
