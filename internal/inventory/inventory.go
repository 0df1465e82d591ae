// Package inventory keeps the newest inventory snapshot of every source in
// memory and answers fleet queries for the API. It sits at the end of the
// inventory topic: the API role consumes the topic into a Store.
package inventory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/novacron/novacron"
)

// Store holds the newest snapshot per source. It is safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	sources map[string]novacron.Inventory
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{sources: map[string]novacron.Inventory{}} }

var _ novacron.InventoryConsumer = (*Store)(nil)

// ConsumeInventory replaces the snapshot of inv.Source unless the stored
// one is newer (a re-delivered old snapshot never rolls the fleet back).
func (s *Store) ConsumeInventory(_ context.Context, inv novacron.Inventory) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.sources[inv.Source]; ok && old.Time.After(inv.Time) {
		return nil
	}
	s.sources[inv.Source] = inv
	return nil
}

// Sources returns how many sources have reported.
func (s *Store) Sources() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sources)
}

// VMFilter selects VMs. Empty fields match everything.
type VMFilter struct {
	Provider, Host, State, Tenant, Region, Zone string
	// Query matches a substring of the name or ID, case-insensitively.
	Query string
	// Tags must all match.
	Tags map[string]string
}

func (f VMFilter) match(vm *novacron.VM) bool {
	if f.Provider != "" && vm.Provider != f.Provider ||
		f.Host != "" && vm.Host != f.Host ||
		f.State != "" && string(vm.State) != f.State ||
		f.Tenant != "" && vm.Tenant != f.Tenant ||
		f.Region != "" && vm.Region != f.Region ||
		f.Zone != "" && vm.Zone != f.Zone {
		return false
	}
	if f.Query != "" {
		q := strings.ToLower(f.Query)
		if !strings.Contains(strings.ToLower(vm.Name), q) && !strings.Contains(strings.ToLower(vm.ID), q) {
			return false
		}
	}
	for k, v := range f.Tags {
		if vm.Tags[k] != v {
			return false
		}
	}
	return true
}

// VMSortKeys are the keys VMs can be sorted by; prefix "-" for descending.
var VMSortKeys = []string{"name", "id", "host", "state", "provider", "tenant", "vcpus", "memory_bytes"}

func vmCompare(key string) func(a, b novacron.VM) int {
	switch key {
	case "id":
		return func(a, b novacron.VM) int { return cmp.Compare(a.ID, b.ID) }
	case "host":
		return func(a, b novacron.VM) int { return cmp.Compare(a.Host, b.Host) }
	case "state":
		return func(a, b novacron.VM) int { return cmp.Compare(a.State, b.State) }
	case "provider":
		return func(a, b novacron.VM) int { return cmp.Compare(a.Provider, b.Provider) }
	case "tenant":
		return func(a, b novacron.VM) int { return cmp.Compare(a.Tenant, b.Tenant) }
	case "vcpus":
		return func(a, b novacron.VM) int { return cmp.Compare(a.Size.VCPUs, b.Size.VCPUs) }
	case "memory_bytes":
		return func(a, b novacron.VM) int { return cmp.Compare(a.Size.MemoryBytes, b.Size.MemoryBytes) }
	case "name":
		return func(a, b novacron.VM) int { return cmp.Compare(a.Name, b.Name) }
	}
	return nil
}

// ValidSort reports whether sort (optionally "-"-prefixed) is a VM sort key.
func ValidSort(sort string) bool {
	return sort == "" || vmCompare(strings.TrimPrefix(sort, "-")) != nil
}

// VMs returns the VMs matching f, sorted by sort (default name, ties by
// ID), then the page [offset, offset+limit) and the total before paging.
// limit <= 0 means no limit.
func (s *Store) VMs(f VMFilter, sort string, offset, limit int) ([]novacron.VM, int) {
	s.mu.RLock()
	var out []novacron.VM
	for _, inv := range s.sources {
		for i := range inv.VMs {
			if f.match(&inv.VMs[i]) {
				out = append(out, inv.VMs[i])
			}
		}
	}
	s.mu.RUnlock()
	desc := strings.HasPrefix(sort, "-")
	c := vmCompare(strings.TrimPrefix(sort, "-"))
	if c == nil {
		c = vmCompare("name")
	}
	slices.SortStableFunc(out, func(a, b novacron.VM) int {
		r := c(a, b)
		if desc {
			r = -r
		}
		if r == 0 {
			r = cmp.Compare(a.Provider+"/"+a.ID, b.Provider+"/"+b.ID)
		}
		return r
	})
	return page(out, offset, limit), len(out)
}

// VM returns one VM by ID (any provider), or false.
func (s *Store) VM(id string) (novacron.VM, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, inv := range s.sources {
		for _, vm := range inv.VMs {
			if vm.ID == id {
				return vm, true
			}
		}
	}
	return novacron.VM{}, false
}

// Hosts returns the hosts of provider (all when empty), sorted by name.
func (s *Store) Hosts(provider string) []novacron.Host {
	s.mu.RLock()
	var out []novacron.Host
	for _, inv := range s.sources {
		for _, h := range inv.Hosts {
			if provider == "" || h.Provider == provider {
				out = append(out, h)
			}
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b novacron.Host) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out
}

func page[T any](s []T, offset, limit int) []T {
	if offset >= len(s) {
		return []T{}
	}
	s = s[offset:]
	if limit > 0 && limit < len(s) {
		s = s[:limit]
	}
	return s
}
