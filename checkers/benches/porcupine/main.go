// Command porcupine-peer checks a splitbrain JSON Lines history of cas-registers with
// Porcupine, for the benchmarks that compare the two checkers side by side
// (docs/benchmarks.md).
//
//	porcupine-peer [-failed-cas-observes] FILE.jsonl
//
// The model is the etcd-like cas-register of Porcupine's own tests, partitioned by key. The
// history is read with splitbrain's meaning: each client invocation is paired with the
// next completion of its process; `ok` completed it; `fail` means it did not happen
// (dropped), except a failed cas with -failed-cas-observes, which then observed a value
// other than the expected one; an `info` completion, a second invocation by the same
// process and no completion at all leave the operation pending to the end of the history
// (a return with an unknown outcome after every other event); a read whose outcome is
// unknown constrains nothing and is dropped. Nemesis events are ignored.
//
// It prints, one per line: `events N`, `operations N`, `keys N`, `parse_seconds S`,
// `check_seconds S` (CheckEvents alone) and `verdict valid|invalid`. Exit 0 valid, 1
// invalid, 65 unreadable input.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/anishathalye/porcupine"
)

// nilValue stands for a register never written, as in Porcupine's etcd model.
const nilValue = -1000000

type input struct {
	key  int   // dense key id, for the partition
	op   uint8 // 0 read, 1 write, 2 cas
	arg1 int   // written value, or cas's expected value
	arg2 int   // cas's new value
}

type output struct {
	ok      bool // cas succeeded
	exists  bool // read returned a value
	value   int  // the value read
	unknown bool // pending: the outcome is not known
}

func step(state, in, out interface{}) (bool, interface{}) {
	st := state.(int)
	inp := in.(input)
	o := out.(output)
	switch inp.op {
	case 0:
		ok := (!o.exists && st == nilValue) || (o.exists && st == o.value) || o.unknown
		return ok, state
	case 1:
		return true, inp.arg1
	default:
		ok := (inp.arg1 == st && o.ok) || (inp.arg1 != st && !o.ok) || o.unknown
		result := st
		if inp.arg1 == st {
			result = inp.arg2
		}
		return ok, result
	}
}

// keyOf maps each operation id to its key; filled while reading.
var keyOf []int

var model = porcupine.Model{
	PartitionEvent: func(history []porcupine.Event) [][]porcupine.Event {
		byKey := map[int][]porcupine.Event{}
		var order []int
		for _, e := range history {
			k := keyOf[e.Id]
			if _, seen := byKey[k]; !seen {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], e)
		}
		parts := make([][]porcupine.Event, 0, len(order))
		for _, k := range order {
			parts = append(parts, byKey[k])
		}
		return parts
	},
	Init:  func() interface{} { return nilValue },
	Step:  step,
	Equal: func(a, b interface{}) bool { return a.(int) == b.(int) },
}

type line struct {
	Process json.RawMessage `json:"process"`
	Type    string          `json:"type"`
	F       string          `json:"f"`
	Key     json.RawMessage `json:"key"`
	Value   json.RawMessage `json:"value"`
	Error   json.RawMessage `json:"error"`
}

type open struct {
	id    int // index in ops
	event int // index of its call in events
}

type op struct {
	call     int // index of the call event
	in       input
	returned bool
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "porcupine-peer: "+format+"\n", args...)
	os.Exit(65)
}

func intValue(raw json.RawMessage, where string) int {
	if bytes.Equal(raw, []byte("null")) || len(raw) == 0 {
		return nilValue
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil {
		fail("%s: expected an integer or null, found %s", where, raw)
	}
	return v
}

func main() {
	failedCasObserves := flag.Bool("failed-cas-observes", false,
		"a failed cas observed a value other than the expected one (default: it did not happen)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: porcupine-peer [-failed-cas-observes] FILE.jsonl")
		os.Exit(64)
	}
	path := flag.Arg(0)
	started := time.Now()
	file, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "porcupine-peer: %v\n", err)
		os.Exit(66)
	}
	scanner := bufio.NewScanner(bufio.NewReaderSize(file, 1<<20))
	scanner.Buffer(make([]byte, 1<<20), 1<<28)

	var events []porcupine.Event
	keys := map[string]int{}
	openOps := map[int]open{}
	var pending []open
	dropped := map[int]bool{} // call events of operations that did not happen
	number := 0
	operations := 0
	for scanner.Scan() {
		number++
		text := bytes.TrimSpace(scanner.Bytes())
		if len(text) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(text, &l); err != nil {
			fail("%s:%d: %v", path, number, err)
		}
		if len(l.Process) > 0 && l.Process[0] == '"' {
			continue // the nemesis
		}
		process, err := strconv.Atoi(string(l.Process))
		if err != nil {
			fail("%s:%d: process: expected an integer, found %s", path, number, l.Process)
		}
		where := func(field string) string { return fmt.Sprintf("%s:%d: %s", path, number, field) }
		if l.Type == "invoke" {
			if prev, ok := openOps[process]; ok {
				pending = append(pending, prev)
			}
			k, ok := keys[string(l.Key)]
			if !ok {
				k = len(keys)
				keys[string(l.Key)] = k
			}
			in := input{key: k}
			switch l.F {
			case "read":
				in.op = 0
			case "write":
				in.op = 1
				in.arg1 = intValue(l.Value, where("value"))
			case "cas":
				var pair []json.RawMessage
				if err := json.Unmarshal(l.Value, &pair); err != nil || len(pair) != 2 {
					fail("%s: expected [expected new], found %s", where("value"), l.Value)
				}
				in.op = 2
				in.arg1 = intValue(pair[0], where("value"))
				in.arg2 = intValue(pair[1], where("value"))
			default:
				fail("%s: expected read, write or cas, found %q", where("f"), l.F)
			}
			id := operations
			operations++
			keyOf = append(keyOf, k)
			openOps[process] = open{id: id, event: len(events)}
			events = append(events, porcupine.Event{ClientId: process, Kind: porcupine.CallEvent, Value: in, Id: id})
			continue
		}
		o, ok := openOps[process]
		if !ok {
			fail("%s:%d: a %s completion of process %d has no invocation before it", path, number, l.Type, process)
		}
		delete(openOps, process)
		in := events[o.event].Value.(input)
		switch l.Type {
		case "ok":
			out := output{ok: true}
			if in.op == 0 {
				v := intValue(l.Value, where("value"))
				out.exists = v != nilValue
				out.value = v
			}
			events = append(events, porcupine.Event{ClientId: process, Kind: porcupine.ReturnEvent, Value: out, Id: o.id})
		case "fail":
			if in.op == 2 && *failedCasObserves {
				events = append(events, porcupine.Event{ClientId: process, Kind: porcupine.ReturnEvent, Value: output{ok: false}, Id: o.id})
			} else {
				dropped[o.event] = true
			}
		case "info":
			pending = append(pending, o)
		default:
			fail("%s: expected invoke, ok, fail or info, found %q", where("type"), l.Type)
		}
	}
	if err := scanner.Err(); err != nil {
		fail("%s: %v", path, err)
	}
	for _, o := range openOps {
		pending = append(pending, o)
	}
	for _, o := range pending {
		if events[o.event].Value.(input).op == 0 {
			dropped[o.event] = true // a read with an unknown outcome constrains nothing
			continue
		}
		events = append(events, porcupine.Event{ClientId: events[o.event].ClientId, Kind: porcupine.ReturnEvent, Value: output{unknown: true}, Id: o.id})
	}
	if len(dropped) > 0 {
		kept := events[:0]
		for i, e := range events {
			if !dropped[i] {
				kept = append(kept, e)
			}
		}
		events = kept
		// Returns of dropped operations were never added, so ids stay matched.
	}
	parse := time.Since(started)

	checkStarted := time.Now()
	valid := porcupine.CheckEvents(model, events)
	check := time.Since(checkStarted)

	fmt.Printf("events %d\noperations %d\nkeys %d\n", len(events), operations, len(keys))
	fmt.Printf("parse_seconds %.6f\ncheck_seconds %.6f\n", parse.Seconds(), check.Seconds())
	if valid {
		fmt.Println("verdict valid")
	} else {
		fmt.Println("verdict invalid")
		os.Exit(1)
	}
}
