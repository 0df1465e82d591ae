package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/inventory"
)

// ReadyCheck is one dependency /readyz asks before answering 200.
type ReadyCheck struct {
	// Name appears in the /readyz body ("bus", "storage").
	Name string
	// Check returns nil when the dependency answers.
	Check func(ctx context.Context) error
}

// Options configure the server.
type Options struct {
	// ListenAddress is host:port; port 0 picks a free port.
	ListenAddress string
	// Token is the bearer token every protected route requires.
	Token string
	// ShutdownTimeout bounds Close when the caller's context has no deadline.
	ShutdownTimeout time.Duration
}

// Settings are what the binary injects.
type Settings struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Gatherer serves /metrics. Default prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
}

// Deps are the services the handlers use; nil ones disable their routes
// (which then answer 503).
type Deps struct {
	// Fleet answers /api/v1/fleet.
	Fleet *inventory.Store
	// Query serves the Prometheus HTTP API paths (/api/v1/query, ...).
	// It receives the request with its path unchanged.
	Query http.Handler
	// Ready lists what /readyz checks.
	Ready []ReadyCheck
	// Mount lets other packages add authenticated routes under /api/v1.
	Mount []func(g *gin.RouterGroup)
}

// QueryPaths are the Prometheus HTTP API paths the server forwards to
// Deps.Query, for GET and POST.
var QueryPaths = []string{
	"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels",
	"/api/v1/label/:name/values",
}

// Server is the API's HTTP server.
type Server struct {
	opts    Options
	deps    Deps
	logger  *slog.Logger
	metrics *metrics
	engine  *gin.Engine
	srv     *http.Server
	ln      net.Listener
	done    chan struct{}
	mu      sync.Mutex
	closed  bool
}

// New builds the server; Open starts listening.
func New(opts Options, set Settings, deps Deps) (*Server, error) {
	if opts.Token == "" {
		return nil, errors.New("api: a token is required: every route but health and metrics needs authentication")
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if set.Gatherer == nil {
		set.Gatherer = prometheus.DefaultGatherer
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{
		opts:    opts,
		deps:    deps,
		logger:  set.Logger.With("component", "api"),
		metrics: newMetrics(set.Registerer),
		engine:  gin.New(),
		done:    make(chan struct{}),
	}
	s.engine.Use(s.instrument, gin.CustomRecovery(func(c *gin.Context, rec any) {
		s.fail(c, fmt.Errorf("panic: %v", rec))
	}))
	s.engine.HandleMethodNotAllowed = true
	s.engine.GET("/healthz", s.healthz)
	s.engine.GET("/readyz", s.readyz)
	s.engine.GET("/metrics", gin.WrapH(promhttp.HandlerFor(set.Gatherer, promhttp.HandlerOpts{})))

	v1 := s.engine.Group("/api/v1", s.authenticate)
	for _, p := range QueryPaths {
		h := s.query
		v1.GET(strings.TrimPrefix(p, "/api/v1"), h)
		v1.POST(strings.TrimPrefix(p, "/api/v1"), h)
	}
	v1.GET("/fleet", s.fleet)
	v1.GET("/fleet/vms", s.fleetVMs)
	v1.GET("/fleet/vms/:id", s.fleetVM)
	v1.GET("/fleet/hosts", s.fleetHosts)
	for _, m := range deps.Mount {
		m(v1)
	}
	s.engine.NoRoute(func(c *gin.Context) {
		c.JSON(http.StatusNotFound, ErrorBody{Error: "no such route: " + c.Request.URL.Path, Code: novacron.ENOTFOUND})
	})
	s.srv = &http.Server{
		Handler:           s.engine,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handler returns the server's routes, for tests with httptest.
func (s *Server) Handler() http.Handler { return s.engine }

// Open listens on the configured address synchronously, so "address in
// use" comes back here, then serves in the background.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.opts.ListenAddress)
	if err != nil {
		return fmt.Errorf("listen on api.listen_address %q: %w", s.opts.ListenAddress, err)
	}
	s.ln = ln
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("API server stopped", "err", err)
		}
	}()
	return nil
}

// Addr returns the address listened on, after Open.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL returns the base URL, after Open.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close shuts the server down gracefully within ctx (or the configured
// timeout). It is safe to call twice and without Open.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ln == nil {
		s.closed = true
		return nil
	}
	s.closed = true
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.ShutdownTimeout)
		defer cancel()
	}
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

func (s *Server) instrument(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.metrics.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
	s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
}

func (s *Server) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.opts.Token)) != 1 {
		s.metrics.authFail.Inc()
		c.Header("WWW-Authenticate", `Bearer realm="novacron"`)
		c.AbortWithStatusJSON(http.StatusUnauthorized, ErrorBody{
			Error: "missing or invalid bearer token (Authorization: Bearer <token>)", Code: novacron.EUNAUTHORIZED,
		})
		return
	}
	c.Next()
}

func (s *Server) healthz(c *gin.Context) { c.String(http.StatusOK, "ok\n") }

// ReadyStatus is the /readyz body.
type ReadyStatus struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
	defer cancel()
	st := ReadyStatus{Ready: true, Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, rc := range s.deps.Ready {
		wg.Go(func() {
			err := rc.Check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				st.Ready = false
				st.Checks[rc.Name] = err.Error()
				return
			}
			st.Checks[rc.Name] = "ok"
		})
	}
	wg.Wait()
	code := http.StatusOK
	if !st.Ready {
		code = http.StatusServiceUnavailable
	}
	c.JSON(code, st)
}

func (s *Server) query(c *gin.Context) {
	if s.deps.Query == nil {
		s.fail(c, novacron.Errorf(novacron.EUNAVAILABLE, "no query backend is configured for this role"))
		return
	}
	s.deps.Query.ServeHTTP(c.Writer, c.Request)
}
