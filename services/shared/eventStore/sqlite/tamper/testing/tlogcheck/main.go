// tlogcheck is a second, independent implementation used by the tests: Go's golang.org/x/mod/sumdb/tlog
// (RFC 6962/9162 trees and proofs) and sumdb/note (C2SP signed notes). It reads one JSON request on stdin
// and writes one JSON answer on stdout; `tlogcheck bundle <dir> <key.pem> <origin>` checks an evidence bundle
// (bundle.go). Build: GO111MODULE=off GOPATH=/usr/share/gocode go build.
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type request struct {
	Leaves      []string      `json:"leaves"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
	VerifierKey string        `json:"verifierKey"`
	Notes       []string      `json:"notes"`
}

type inclusion struct {
	Index int64    `json:"index"`
	Size  int64    `json:"size"`
	Proof []string `json:"proof"`
}

type consistency struct {
	First  int64    `json:"first"`
	Second int64    `json:"second"`
	Proof  []string `json:"proof"`
}

type answer struct {
	Roots       []string   `json:"roots"`
	Inclusion   []verdict  `json:"inclusion"`
	Consistency []verdict  `json:"consistency"`
	Notes       []noteInfo `json:"notes"`
}

type verdict struct {
	Accepted bool     `json:"accepted"`
	Error    string   `json:"error,omitempty"`
	GoProof  []string `json:"goProof"`
}

type noteInfo struct {
	Accepted bool   `json:"accepted"`
	Text     string `json:"text,omitempty"`
	Error    string `json:"error,omitempty"`
}

type memHashes []tlog.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

func hashes(xs []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(xs))
	for i, x := range xs {
		b, err := hex.DecodeString(x)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("bad hash %q", x)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

func hexes(xs []tlog.Hash) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = hex.EncodeToString(x[:])
	}
	return out
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bundle" {
		os.Exit(bundleMain(os.Args[2:]))
	}
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var stored memHashes
	var ans answer
	for i, l := range req.Leaves {
		data, err := hex.DecodeString(l)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		hs, err := tlog.StoredHashes(int64(i), data, stored)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		stored = append(stored, hs...)
		root, err := tlog.TreeHash(int64(i+1), stored)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ans.Roots = append(ans.Roots, hex.EncodeToString(root[:]))
	}
	for _, q := range req.Inclusion {
		v := verdict{}
		goProof, err := tlog.ProveRecord(q.Size, q.Index, stored)
		if err == nil {
			v.GoProof = hexes(goProof)
		}
		proof, err := hashes(q.Proof)
		if err == nil {
			th, _ := tlog.TreeHash(q.Size, stored)
			data, _ := hex.DecodeString(req.Leaves[q.Index])
			err = tlog.CheckRecord(proof, q.Size, th, q.Index, tlog.RecordHash(data))
		}
		v.Accepted = err == nil
		if err != nil {
			v.Error = err.Error()
		}
		ans.Inclusion = append(ans.Inclusion, v)
	}
	for _, q := range req.Consistency {
		v := verdict{}
		goProof, err := tlog.ProveTree(q.Second, q.First, stored)
		if err == nil {
			v.GoProof = hexes(goProof)
		}
		proof, err := hashes(q.Proof)
		if err == nil {
			t1, _ := tlog.TreeHash(q.First, stored)
			t2, _ := tlog.TreeHash(q.Second, stored)
			err = tlog.CheckTree(proof, q.Second, t2, q.First, t1)
		}
		v.Accepted = err == nil
		if err != nil {
			v.Error = err.Error()
		}
		ans.Consistency = append(ans.Consistency, v)
	}
	if req.VerifierKey != "" {
		verifier, err := note.NewVerifier(req.VerifierKey)
		for _, n := range req.Notes {
			info := noteInfo{}
			if err != nil {
				info.Error = err.Error()
			} else if msg, oerr := note.Open([]byte(n), note.VerifierList(verifier)); oerr != nil {
				info.Error = oerr.Error()
			} else {
				info.Accepted = true
				info.Text = msg.Text
			}
			ans.Notes = append(ans.Notes, info)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(ans); err != nil {
		os.Exit(1)
	}
}
