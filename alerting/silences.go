package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	amlabels "github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/alertmanager/silence"
	pb "github.com/prometheus/alertmanager/silence/silencepb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/novacron/novacron"
)

// Silence mutes notifications of the alerts its matchers select between
// StartsAt and EndsAt. The JSON shape follows Alertmanager's API v2.
type Silence struct {
	// ID is assigned on creation.
	ID        string           `json:"id"`
	Matchers  []SilenceMatcher `json:"matchers"`
	StartsAt  time.Time        `json:"startsAt"`
	EndsAt    time.Time        `json:"endsAt"`
	UpdatedAt time.Time        `json:"updatedAt,omitzero"`
	CreatedBy string           `json:"createdBy"`
	Comment   string           `json:"comment"`
	// Status is "pending", "active" or "expired" (read only).
	Status SilenceStatus `json:"status"`
}

// SilenceMatcher is one matcher of a silence.
type SilenceMatcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	// IsEqual is false for != and !~; absent means true.
	IsEqual *bool `json:"isEqual,omitempty"`
}

// SilenceStatus is the state of a silence.
type SilenceStatus struct {
	State string `json:"state"`
}

func silenceFromProto(s *pb.Silence, now time.Time) Silence {
	out := Silence{
		ID:        s.Id,
		StartsAt:  s.StartsAt.AsTime().UTC(),
		EndsAt:    s.EndsAt.AsTime().UTC(),
		CreatedBy: s.CreatedBy,
		Comment:   s.Comment,
		Status:    SilenceStatus{State: string(silence.StateFromProtoAt(s, now))},
	}
	if s.UpdatedAt != nil {
		out.UpdatedAt = s.UpdatedAt.AsTime().UTC()
	}
	ms := s.Matchers
	if len(ms) == 0 && len(s.MatcherSets) > 0 {
		ms = s.MatcherSets[0].Matchers
	}
	for _, m := range ms {
		eq := m.Type == pb.Matcher_EQUAL || m.Type == pb.Matcher_REGEXP
		out.Matchers = append(out.Matchers, SilenceMatcher{
			Name: m.Name, Value: m.Pattern, IsEqual: &eq,
			IsRegex: m.Type == pb.Matcher_REGEXP || m.Type == pb.Matcher_NOT_REGEXP,
		})
	}
	return out
}

func (s Silence) toProto() (*pb.Silence, error) {
	var errs []error
	if len(s.Matchers) == 0 {
		errs = append(errs, errors.New("matchers: at least one is required"))
	}
	if strings.TrimSpace(s.CreatedBy) == "" {
		errs = append(errs, errors.New("createdBy is required"))
	}
	if strings.TrimSpace(s.Comment) == "" {
		errs = append(errs, errors.New("comment is required"))
	}
	if s.EndsAt.IsZero() || !s.EndsAt.After(s.StartsAt) {
		errs = append(errs, errors.New("endsAt must be after startsAt"))
	}
	p := &pb.Silence{
		Id:        s.ID,
		StartsAt:  timestamppb.New(s.StartsAt),
		EndsAt:    timestamppb.New(s.EndsAt),
		CreatedBy: s.CreatedBy,
		Comment:   s.Comment,
	}
	allNegative := true
	for i, m := range s.Matchers {
		eq := m.IsEqual == nil || *m.IsEqual
		var t pb.Matcher_Type
		var mt amlabels.MatchType
		switch {
		case eq && !m.IsRegex:
			t, mt = pb.Matcher_EQUAL, amlabels.MatchEqual
		case eq && m.IsRegex:
			t, mt = pb.Matcher_REGEXP, amlabels.MatchRegexp
		case !eq && !m.IsRegex:
			t, mt = pb.Matcher_NOT_EQUAL, amlabels.MatchNotEqual
		default:
			t, mt = pb.Matcher_NOT_REGEXP, amlabels.MatchNotRegexp
		}
		if m.Name == "" {
			errs = append(errs, fmt.Errorf("matchers[%d]: name is required", i))
			continue
		}
		lm, err := amlabels.NewMatcher(mt, m.Name, m.Value)
		if err != nil {
			errs = append(errs, fmt.Errorf("matchers[%d]: %w", i, err))
			continue
		}
		if !lm.Matches("") {
			allNegative = false
		}
		p.Matchers = append(p.Matchers, &pb.Matcher{Type: t, Name: m.Name, Pattern: m.Value})
	}
	if len(s.Matchers) > 0 && allNegative {
		errs = append(errs, errors.New("matchers: at least one must not match the empty string, or the silence would mute every alert"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, novacron.Errorf(novacron.EINVALID, "invalid silence: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return p, nil
}

// Silences returns every silence the pipeline knows (pending, active and
// not yet garbage-collected expired ones), active first, then by end time.
func (a *Alerting) Silences(ctx context.Context) ([]Silence, error) {
	n, err := a.runningNotifier()
	if err != nil {
		return nil, err
	}
	sils, _, err := n.silences.Query(ctx)
	if err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	now := a.now()
	out := make([]Silence, 0, len(sils))
	for _, s := range sils {
		out = append(out, silenceFromProto(s, now))
	}
	rank := map[string]int{"active": 0, "pending": 1, "expired": 2}
	slices.SortFunc(out, func(x, y Silence) int {
		if rank[x.Status.State] != rank[y.Status.State] {
			return rank[x.Status.State] - rank[y.Status.State]
		}
		return x.EndsAt.Compare(y.EndsAt)
	})
	return out, nil
}

// CreateSilence adds a silence (or updates the one with s.ID) and returns
// it with its ID. A zero StartsAt means now. The silences are saved to
// the state database before it returns.
func (a *Alerting) CreateSilence(ctx context.Context, s Silence) (Silence, error) {
	n, err := a.runningNotifier()
	if err != nil {
		return Silence{}, err
	}
	if s.StartsAt.IsZero() {
		s.StartsAt = a.now()
	}
	p, err := s.toProto()
	if err != nil {
		return Silence{}, err
	}
	if err := n.silences.Set(ctx, p); err != nil {
		if errors.Is(err, silence.ErrNotFound) {
			return Silence{}, novacron.Errorf(novacron.ENOTFOUND, "silence %q not found", s.ID)
		}
		return Silence{}, novacron.Errorf(novacron.EINVALID, "invalid silence: %v", err)
	}
	if err := n.save(ctx); err != nil {
		return Silence{}, err
	}
	got, err := n.silences.QueryOne(ctx, silence.QIDs(p.Id))
	if err != nil {
		return Silence{}, fmt.Errorf("read back silence %s: %w", p.Id, err)
	}
	return silenceFromProto(got, a.now()), nil
}

// ExpireSilence ends a silence now.
func (a *Alerting) ExpireSilence(ctx context.Context, id string) error {
	n, err := a.runningNotifier()
	if err != nil {
		return err
	}
	if err := n.silences.Expire(ctx, id); err != nil {
		if errors.Is(err, silence.ErrNotFound) {
			return novacron.Errorf(novacron.ENOTFOUND, "silence %q not found", id)
		}
		return novacron.Errorf(novacron.ECONFLICT, "expire silence %q: %v", id, err)
	}
	return n.save(ctx)
}
