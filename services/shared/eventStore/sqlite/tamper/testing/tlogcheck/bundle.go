package main

// An independent checker of an iommutrail-bundle/v2 folder (BUNDLE-FORMAT.md): the checkpoint's
// signature under the pinned origin (sumdb/note), the seal's ed25519 signature and its pairing with the
// checkpoint, the chain of every line from the stream's genesis to the sealed head, and each selected line's
// RFC 9162 inclusion proof against the checkpoint root (sumdb/tlog), and the selection re-applied to every
// event of the range (selection.go): a selected line must match it, a context line must not.
//
//	tlogcheck bundle <dir> <public-key.pem> <origin>

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type entry struct {
	H         string   `json:"h"`
	P         string   `json:"p"`
	C         string   `json:"c"`
	D         string   `json:"d"`
	Position  string   `json:"position"`
	Inclusion []string `json:"inclusion"`
}

type proofFile struct {
	Format    string    `json:"format"`
	Stream    string    `json:"stream"`
	Host      string    `json:"host"`
	Selection selection `json:"selection"`
	Origin    string    `json:"origin"`
	Leaf      string    `json:"leaf"`
	TreeSize  string    `json:"treeSize"`
	Range     struct {
		FromRevision string `json:"fromRevision"`
		ToRevision   string `json:"toRevision"`
	} `json:"range"`
	Entries []entry `json:"entries"`
}

type sealFile struct {
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

type sealPayload struct {
	Heads []struct {
		Stream   string `json:"stream"`
		Revision string `json:"revision"`
		Position string `json:"position"`
		Hash     string `json:"hash"`
	} `json:"heads"`
}

type bundleAnswer struct {
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
	Selected int    `json:"selected"`
	Context  int    `json:"context"`
	TreeSize int64  `json:"treeSize"`
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<26)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out, s.Err()
}

func checkBundle(dir, keyPath, origin string) (bundleAnswer, error) {
	var ans bundleAnswer
	var proof proofFile
	raw, err := os.ReadFile(filepath.Join(dir, "proof.json"))
	if err != nil {
		return ans, err
	}
	if err := json.Unmarshal(raw, &proof); err != nil {
		return ans, fmt.Errorf("proof.json: %v", err)
	}
	if proof.Format != "iommutrail-bundle/v2" {
		return ans, fmt.Errorf("proof.json: format %q", proof.Format)
	}
	if proof.Origin != origin {
		return ans, fmt.Errorf("bundle of log %s, not the pinned %s", proof.Origin, origin)
	}
	pemBytes, err := os.ReadFile(keyPath)
	if err != nil {
		return ans, err
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return ans, fmt.Errorf("%s: not PEM", keyPath)
	}
	anyKey, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return ans, err
	}
	pub, ok := anyKey.(ed25519.PublicKey)
	if !ok {
		return ans, fmt.Errorf("%s: not an ed25519 key", keyPath)
	}

	// the checkpoint, under the pinned origin
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return ans, err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return ans, err
	}
	msg, err := os.ReadFile(filepath.Join(dir, "checkpoint.note"))
	if err != nil {
		return ans, err
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return ans, fmt.Errorf("checkpoint.note: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != origin {
		return ans, fmt.Errorf("checkpoint.note: not a checkpoint of %s", origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || lines[1] != proof.TreeSize {
		return ans, fmt.Errorf("checkpoint.note: size %q, proof says %s", lines[1], proof.TreeSize)
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return ans, fmt.Errorf("checkpoint.note: root: %v", err)
	}
	ans.TreeSize = size

	// the seal: same key, cut with the checkpoint, its head ends the range
	var seal sealFile
	raw, err = os.ReadFile(filepath.Join(dir, "seal.json"))
	if err != nil {
		return ans, err
	}
	if err := json.Unmarshal(raw, &seal); err != nil {
		return ans, fmt.Errorf("seal.json: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(seal.Signature)
	if err != nil || !ed25519.Verify(pub, []byte(seal.Payload), sig) {
		return ans, fmt.Errorf("seal.json: bad signature")
	}
	var payload sealPayload
	if err := json.Unmarshal([]byte(seal.Payload), &payload); err != nil {
		return ans, fmt.Errorf("seal.json payload: %v", err)
	}
	var newest int64
	headHash, headRevision := "", ""
	for _, h := range payload.Heads {
		p, _ := strconv.ParseInt(h.Position, 10, 64)
		if p > newest {
			newest = p
		}
		if h.Stream == proof.Stream {
			headHash, headRevision = h.Hash, h.Revision
		}
	}
	if newest != size {
		return ans, fmt.Errorf("seal.json (newest position %d) was not cut with the checkpoint (size %d)", newest, size)
	}
	if headHash == "" || headRevision != proof.Range.ToRevision || proof.Range.FromRevision != "0" || strconv.Itoa(len(proof.Entries)-1) != headRevision {
		return ans, fmt.Errorf("the range does not run from revision 0 to the sealed head %q", headRevision)
	}

	// every line: the chain from genesis, and each selected line's inclusion under the checkpoint
	selected, err := readLines(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		return ans, err
	}
	context, err := readLines(filepath.Join(dir, "context.jsonl"))
	if err != nil {
		return ans, err
	}
	sel, err := newSelectionMatcher(proof.Selection)
	if err != nil {
		return ans, fmt.Errorf("proof.json selection: %v", err)
	}
	g := sha256.Sum256([]byte("iommutrail/chain/v1\n" + proof.Stream))
	h := g[:]
	for r, e := range proof.Entries {
		var line string
		switch {
		case e.P != "":
			if ans.Selected >= len(selected) {
				return ans, fmt.Errorf("revision %d: events.jsonl is short", r)
			}
			line = selected[ans.Selected]
			ans.Selected++
			pos, err := strconv.ParseInt(e.Position, 10, 64)
			if err != nil {
				return ans, fmt.Errorf("revision %d: position %q", r, e.Position)
			}
			var p tlog.RecordProof
			for _, x := range e.Inclusion {
				b, err := base64.StdEncoding.DecodeString(x)
				if err != nil || len(b) != 32 {
					return ans, fmt.Errorf("revision %d: bad inclusion hash", r)
				}
				var hh tlog.Hash
				copy(hh[:], b)
				p = append(p, hh)
			}
			var leaf []byte
			switch proof.Leaf {
			case "", "iommutrail/leaf/v1":
				leaf = []byte(fmt.Sprintf("iommutrail/leaf/v1\n%d\n%s\n%d\n%s", pos, proof.Stream, r, line))
			case "iommutrail/leaf/v2":
				// v2: the position is the leaf index + 1 (CheckRecord binds it); the event by its SHA-256
				d := sha256.Sum256([]byte(line))
				leaf = append([]byte(fmt.Sprintf("iommutrail/leaf/v2\n%s\n%d\n", proof.Stream, r)), d[:]...)
			default:
				return ans, fmt.Errorf("unknown leaf format %q", proof.Leaf)
			}
			if err := tlog.CheckRecord(p, size, root, pos-1, tlog.RecordHash(leaf)); err != nil {
				return ans, fmt.Errorf("revision %d (events.jsonl line %d): not in the log at position %d: %v", r, ans.Selected, pos, err)
			}
		case e.C != "":
			if ans.Context >= len(context) {
				return ans, fmt.Errorf("revision %d: context.jsonl is short", r)
			}
			line = context[ans.Context]
			ans.Context++
		default:
			return ans, fmt.Errorf("revision %d: entry carries no event (a bare digest hides one)", r)
		}
		where := "context.jsonl"
		if e.P != "" {
			where = "events.jsonl"
		}
		ev, err := parseEvent(line)
		if err != nil {
			return ans, fmt.Errorf("revision %d (%s): %v", r, where, err)
		}
		if ev.Host != proof.Host {
			return ans, fmt.Errorf("revision %d (%s): event of host %s, bundle of %s", r, where, ev.Host, proof.Host)
		}
		matched, err := sel.matches(ev)
		if err != nil {
			return ans, fmt.Errorf("revision %d (%s): %v", r, where, err)
		}
		if e.P != "" && !matched {
			return ans, fmt.Errorf("revision %d (events.jsonl line %d, seq %d) does not match the selection", r, ans.Selected, ev.Seq)
		}
		if e.C != "" && matched {
			return ans, fmt.Errorf("revision %d (seq %d) matches the selection but is hidden in context.jsonl", r, ev.Seq)
		}
		d := sha256.Sum256([]byte(line))
		next := sha256.Sum256(append(append([]byte{}, h...), d[:]...))
		h = next[:]
	}
	if ans.Selected != len(selected) || ans.Context != len(context) {
		return ans, fmt.Errorf("lines left over: events.jsonl %d of %d, context.jsonl %d of %d used", ans.Selected, len(selected), ans.Context, len(context))
	}
	want, err := hex.DecodeString(headHash)
	if err != nil || !bytes.Equal(h, want) {
		return ans, fmt.Errorf("the chain does not reach the sealed head")
	}
	ans.OK = true
	return ans, nil
}

func bundleMain(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: tlogcheck bundle <dir> <public-key.pem> <origin>")
		return 2
	}
	ans, err := checkBundle(args[0], args[1], args[2])
	if err != nil {
		ans.Error = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(ans)
	if !ans.OK {
		return 1
	}
	return 0
}
