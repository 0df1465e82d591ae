package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/inventory"
)

// MaxPageSize caps the limit parameter of list endpoints.
const MaxPageSize = 1000

// FleetPage is the body of /api/v1/fleet/vms.
type FleetPage struct {
	VMs    []novacron.VM `json:"vms"`
	Total  int           `json:"total"`
	Offset int           `json:"offset"`
	Limit  int           `json:"limit"`
}

// FleetSummary is the body of /api/v1/fleet: a page of VMs, all hosts and
// counts by state and provider.
type FleetSummary struct {
	FleetPage
	Hosts      []novacron.Host `json:"hosts"`
	ByState    map[string]int  `json:"by_state"`
	ByProvider map[string]int  `json:"by_provider"`
}

func (s *Server) listParams(c *gin.Context) (f inventory.VMFilter, sort string, offset, limit int, err error) {
	f = inventory.VMFilter{
		Provider: c.Query("provider"), Host: c.Query("host"), State: c.Query("state"),
		Tenant: c.Query("tenant"), Region: c.Query("region"), Zone: c.Query("zone"), Query: c.Query("q"),
	}
	for _, t := range c.QueryArray("tag") {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return f, "", 0, 0, novacron.Errorf(novacron.EINVALID, "query parameter tag=%q: want tag=key=value", t)
		}
		if f.Tags == nil {
			f.Tags = map[string]string{}
		}
		f.Tags[k] = v
	}
	sort = c.DefaultQuery("sort", "name")
	if !inventory.ValidSort(sort) {
		return f, "", 0, 0, novacron.Errorf(novacron.EINVALID, "query parameter sort=%q: want one of %s (prefix - for descending)",
			sort, strings.Join(inventory.VMSortKeys, ", "))
	}
	offset, err = intParam(c, "offset", 0, 0, 1<<31)
	if err != nil {
		return
	}
	limit, err = intParam(c, "limit", 100, 1, MaxPageSize)
	return
}

func intParam(c *gin.Context, name string, def, lo, hi int) (int, error) {
	raw := c.Query(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, novacron.Errorf(novacron.EINVALID, "query parameter %s=%q: want an integer from %d to %d", name, raw, lo, hi)
	}
	return n, nil
}

func (s *Server) fleetStore(c *gin.Context) *inventory.Store {
	if s.deps.Fleet == nil {
		s.fail(c, novacron.Errorf(novacron.EUNAVAILABLE, "fleet inventory is not served by this role"))
		return nil
	}
	return s.deps.Fleet
}

func (s *Server) fleetVMs(c *gin.Context) {
	st := s.fleetStore(c)
	if st == nil {
		return
	}
	f, sort, offset, limit, err := s.listParams(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	vms, total := st.VMs(f, sort, offset, limit)
	c.JSON(http.StatusOK, FleetPage{VMs: vms, Total: total, Offset: offset, Limit: limit})
}

func (s *Server) fleet(c *gin.Context) {
	st := s.fleetStore(c)
	if st == nil {
		return
	}
	f, sort, offset, limit, err := s.listParams(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	vms, total := st.VMs(f, sort, offset, limit)
	all, _ := st.VMs(f, "", 0, 0)
	sum := FleetSummary{
		FleetPage:  FleetPage{VMs: vms, Total: total, Offset: offset, Limit: limit},
		Hosts:      st.Hosts(f.Provider),
		ByState:    map[string]int{},
		ByProvider: map[string]int{},
	}
	for _, vm := range all {
		sum.ByState[string(vm.State)]++
		sum.ByProvider[vm.Provider]++
	}
	c.JSON(http.StatusOK, sum)
}

func (s *Server) fleetVM(c *gin.Context) {
	st := s.fleetStore(c)
	if st == nil {
		return
	}
	vm, ok := st.VM(c.Param("id"))
	if !ok {
		s.fail(c, novacron.Errorf(novacron.ENOTFOUND, "VM %q not found", c.Param("id")))
		return
	}
	c.JSON(http.StatusOK, vm)
}

func (s *Server) fleetHosts(c *gin.Context) {
	st := s.fleetStore(c)
	if st == nil {
		return
	}
	c.JSON(http.StatusOK, gin.H{"hosts": st.Hosts(c.Query("provider"))})
}
