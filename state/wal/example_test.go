package wal_test

import (
	"fmt"
	"io"
	"os"

	"nba/state/wal"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "wal-example")
	defer os.RemoveAll(dir)
	l, err := wal.Open(wal.Config{Dir: dir}, nil, func([]byte) error { return nil })
	if err != nil {
		panic(err)
	}
	l.Append([]byte("a"), []byte("b")) // returns after the fsync
	l.Checkpoint(func(w io.Writer) error { _, err := w.Write([]byte("a,b")); return err })
	l.Append([]byte("c"))
	l.Close()

	// On start: the checkpoint, then what came after it.
	l, err = wal.Open(wal.Config{Dir: dir}, func(r io.Reader) error {
		b, err := io.ReadAll(r)
		fmt.Printf("checkpoint %s\n", b)
		return err
	}, func(rec []byte) error {
		fmt.Printf("record %s\n", rec)
		return nil
	})
	if err != nil {
		panic(err)
	}
	l.Close()
	// Output:
	// checkpoint a,b
	// record c
}
