package declog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Erasures: an erased customer's records stay in the log files (they are
// compressed batches, not rewritten), but the erasure is recorded by the
// customer's pseudonym in the file ErasuresFile of the log's directory,
// one JSON line per erasure:
//
//	{"type":"erasure","customer":"<pseudonym>","time":"2026-03-10T12:00:00Z"}
//
// and ReadDir skips every record of an erased pseudonym (counted in
// ReadStats.Erased), so nba log, replay, evaluate and uplift never see
// them. The file is appended and synced before LogErasure returns: an
// acknowledged erasure is not lost. The files age out as usual
// (Config.MaxFiles); the erasures file is kept.

// ErasuresFile is the name of the erasures file in a log directory.
const ErasuresFile = "erasures.jsonl"

// LogErasure records durably that customer was erased at t, by its
// pseudonym. Safe for concurrent use.
func (l *Logger) LogErasure(customer string, t time.Time) error {
	line, _ := json.Marshal(struct {
		Type     string    `json:"type"`
		Customer string    `json:"customer"`
		Time     time.Time `json:"time"`
	}{"erasure", Pseudonym(l.cfg.Secret, customer), t.UTC()})
	l.eraseMu.Lock()
	defer l.eraseMu.Unlock()
	f, err := os.OpenFile(filepath.Join(l.cfg.Dir, ErasuresFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("cannot record erasure: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot record erasure: %w", err)
	}
	return nil
}

// ErasedPseudonyms reads the erasures file of dir: the pseudonyms erased.
// A directory without one has none. A damaged line is an error.
func ErasedPseudonyms(dir string) (map[string]bool, error) {
	f, err := os.Open(filepath.Join(dir, ErasuresFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read erasures: %w", err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var e struct {
			Type, Customer string
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Type != "erasure" || e.Customer == "" {
			return nil, fmt.Errorf("cannot read erasures: line %d: not an erasure record", n)
		}
		out[e.Customer] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read erasures: %w", err)
	}
	return out, nil
}

// recordCustomer returns the pseudonym of a record line as the writer
// writes it ({"type":"...","customer":"<pseudonym>",...}), nil if the
// line does not start so.
func recordCustomer(line []byte) []byte {
	const key = `","customer":"`
	i := bytes.Index(line[:min(len(line), 40)], []byte(key))
	if i < 0 {
		return nil
	}
	rest := line[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}
