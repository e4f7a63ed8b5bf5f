package local

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/unified-streaming-etl/etl/internal/poller"
)

// failureDir writes the batches the mappings give up on as a mapping's S3
// on-failure destination does (docs/aws-facts.md §5): one object per
// batch, named aws/lambda/<mapping>/<shardID>/YYYY/MM/DD/<time>-<uuid>,
// holding the batch description and, in "payload", the invocation's event
// with its records. `etl replay --failures file://DIR` reads it back.
type failureDir struct {
	dir       string
	temporary string // removed on Close; empty when the caller chose dir
}

// s3FailureRecord is FailureRecord with the payload only S3 receives.
type s3FailureRecord struct {
	poller.FailureRecord
	Payload events.KinesisEvent `json:"payload"`
}

func newFailureDir(dir string) (*failureDir, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("failure directory: %w", err)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		return &failureDir{dir: abs}, nil
	}
	tmp, err := os.MkdirTemp("", "etl-local-")
	if err != nil {
		return nil, fmt.Errorf("failure directory: %w", err)
	}
	dir = filepath.Join(tmp, "failures")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failure directory: %w", err)
	}
	return &failureDir{dir: dir, temporary: tmp}, nil
}

// write stores one on-failure record of mapping's function. The records
// hold customers' data: files are owner-only.
func (d *failureDir) write(function string, f poller.FailureRecord) error {
	at := time.Now().UTC()
	var id [16]byte
	_, _ = rand.Read(id[:])
	rel := filepath.Join("aws", "lambda", function, f.KinesisBatchInfo.ShardID, at.Format("2006/01/02"),
		at.Format("2006-01-02T15.04.05")+"-"+hex.EncodeToString(id[:]))
	body, err := json.Marshal(s3FailureRecord{FailureRecord: f, Payload: events.KinesisEvent{Records: f.Records}})
	if err != nil {
		return err
	}
	path := filepath.Join(d.dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// Written aside and renamed, so a reader never sees half a record.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// files lists the records written so far.
func (d *failureDir) files() ([]string, error) {
	var out []string
	err := filepath.WalkDir(d.dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && filepath.Ext(p) != ".tmp" {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

func (d *failureDir) close() error {
	if d == nil || d.temporary == "" {
		return nil
	}
	return os.RemoveAll(d.temporary)
}
