package main

// The bundle's selection re-applied to each event, as BUNDLE-FORMAT.md specifies (the same rule as the
// store's index, services/shared/eventStore/indexKeys.ts, written again here from the spec): an event is filed under
// the groups and devices it names; an event that names devices but no group is also filed under the group
// each device belongs to at that point of the host's history; group membership follows topology snapshots
// (reset), device-added (set) and device-removed (remove) events. Times are compared as integers.

import (
	"encoding/json"
	"fmt"
	"math/big"
)

type selection struct {
	Group      *int64  `json:"group"`
	Device     *string `json:"device"`
	FromTimeNs *string `json:"fromTimeNs"`
	ToTimeNs   *string `json:"toTimeNs"`
}

type event struct {
	Type string          `json:"type"`
	Host string          `json:"host"`
	Seq  int64           `json:"seq"`
	Time string          `json:"time"`
	Data json.RawMessage `json:"data"`
}

type topology struct {
	Groups []struct {
		Group   int64    `json:"group"`
		Devices []string `json:"devices"`
	} `json:"groups"`
	Devices []struct {
		Device string `json:"device"`
		Group  *int64 `json:"group"`
	} `json:"devices"`
}

type matcher struct {
	sel      selection
	from, to *big.Int
	members  map[string]int64
}

func decimal(s *string, name string) (*big.Int, error) {
	if s == nil {
		return nil, nil
	}
	v, ok := new(big.Int).SetString(*s, 10)
	if !ok {
		return nil, fmt.Errorf("%s %q is not a decimal", name, *s)
	}
	return v, nil
}

func newSelectionMatcher(sel selection) (*matcher, error) {
	from, err := decimal(sel.FromTimeNs, "fromTimeNs")
	if err != nil {
		return nil, err
	}
	to, err := decimal(sel.ToTimeNs, "toTimeNs")
	if err != nil {
		return nil, err
	}
	return &matcher{sel: sel, from: from, to: to, members: map[string]int64{}}, nil
}

func parseEvent(line string) (event, error) {
	var e event
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		return e, fmt.Errorf("not an event: %v", err)
	}
	if e.Type == "" || e.Host == "" || e.Time == "" {
		return e, fmt.Errorf("not an event: type, host or time missing")
	}
	return e, nil
}

// keysOf: the groups and devices the event names itself, and its membership change
func keysOf(e event) (groups []int64, devices []string, change func(map[string]int64), err error) {
	if e.Type == "TopologySnapshotTaken" {
		var t topology
		if err := json.Unmarshal(e.Data, &t); err != nil {
			return nil, nil, nil, fmt.Errorf("data: %v", err)
		}
		for _, g := range t.Groups {
			groups = append(groups, g.Group)
			devices = append(devices, g.Devices...)
		}
		for _, d := range t.Devices {
			devices = append(devices, d.Device)
			if d.Group != nil {
				groups = append(groups, *d.Group)
			}
		}
		change = func(m map[string]int64) {
			for k := range m {
				delete(m, k)
			}
			for _, g := range t.Groups {
				for _, d := range g.Devices {
					m[d] = g.Group
				}
			}
			for _, d := range t.Devices {
				if d.Group != nil {
					m[d.Device] = *d.Group
				}
			}
		}
		return groups, devices, change, nil
	}
	// other events: a numeric data.group and a string data.device, when present
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(e.Data, &fields); err != nil {
		return nil, nil, nil, fmt.Errorf("data: %v", err)
	}
	var group *int64
	var device *string
	if raw, ok := fields["group"]; ok {
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			if g, err := n.Int64(); err == nil {
				group = &g
				groups = append(groups, g)
			}
		}
	}
	if raw, ok := fields["device"]; ok {
		var d string
		if json.Unmarshal(raw, &d) == nil {
			device = &d
			devices = append(devices, d)
		}
	}
	if group != nil && device != nil {
		switch e.Type {
		case "DeviceAddedToGroup", "TraceAddDeviceToGroup":
			change = func(m map[string]int64) { m[*device] = *group }
		case "DeviceRemovedFromGroup", "TraceRemoveDeviceFromGroup":
			change = func(m map[string]int64) {
				if g, ok := m[*device]; ok && g == *group {
					delete(m, *device)
				}
			}
		}
	}
	return groups, devices, change, nil
}

// matches files the event under its keys (then applies its membership change) and says if the selection holds it
func (s *matcher) matches(e event) (bool, error) {
	groups, devices, change, err := keysOf(e)
	if err != nil {
		return false, err
	}
	inGroup := func(g int64) bool {
		for _, x := range groups {
			if x == g {
				return true
			}
		}
		// a device-only event is filed under each device's current group
		if len(groups) == 0 {
			for _, d := range devices {
				if m, ok := s.members[d]; ok && m == g {
					return true
				}
			}
		}
		return false
	}
	hasDevice := func(d string) bool {
		for _, x := range devices {
			if x == d {
				return true
			}
		}
		return false
	}
	ok := true
	t, valid := new(big.Int).SetString(e.Time, 10)
	if !valid {
		return false, fmt.Errorf("time %q is not a decimal", e.Time)
	}
	if s.from != nil && t.Cmp(s.from) < 0 {
		ok = false
	}
	if s.to != nil && t.Cmp(s.to) > 0 {
		ok = false
	}
	if s.sel.Group != nil && !inGroup(*s.sel.Group) {
		ok = false
	}
	if s.sel.Device != nil && !hasDevice(*s.sel.Device) {
		ok = false
	}
	if change != nil {
		change(s.members)
	}
	return ok, nil
}
