package acd

import (
	"cmp"
	"encoding/json"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	// The server ships in a distroless image without /usr/share/zoneinfo.
	// Embedding the zone database (about 450 KB) keeps every IANA name a
	// tenant may configure resolvable wherever the binary runs.
	_ "time/tzdata"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Limits on one schedule, so that checking it and searching it stay cheap.
const (
	maxSpansPerDay = 8
	maxHolidays    = 366
	maxSpecialDays = 366
)

// hoursHorizon is how far NextOpen and NextClose look ahead: a little over a
// year, so that a yearly pattern (a holiday, a special day) is always seen.
const hoursHorizon = 400 * fullDay

const fullDay = 24 * time.Hour

// weekdayKeys are the keys of Hours.Weekly, indexed by time.Weekday.
var weekdayKeys = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Hours is a skill group's opening schedule in its own time zone. Routing
// asks it whether the group takes sessions now and, when it does not, when
// it will (for the after-hours message and for callbacks).
//
// Times are wall-clock times in TimeZone, so "09:00" stays 09:00 across
// daylight-saving changes: a span starting in a skipped hour opens when the
// clock jumps past the gap, and a repeated hour is open or closed once per
// pass of the clock.
//
// Validate (ParseHours calls it) resolves the zone and compiles the spans
// once, because Open runs on every routing decision. Call it again after
// changing the fields, and before sharing the value between goroutines.
type Hours struct {
	// TimeZone is an IANA name such as "Asia/Shanghai"; "" means UTC.
	TimeZone string `json:"time_zone"`
	// Weekly holds the regular spans by day, keys "mon".."sun"; a day that
	// is missing or empty is closed all day.
	Weekly map[string][]Span `json:"weekly"`
	// Holidays are "YYYY-MM-DD" dates (in TimeZone) closed all day.
	Holidays []string `json:"holidays,omitempty"`
	// Special overrides the weekly schedule on given dates (e.g. a Saturday
	// opened for a sale): date -> spans; an empty list means closed.
	Special map[string][]Span `json:"special,omitempty"`

	sched *compiledHours // compiled by Validate; nil until then
}

// Span is an opening interval within one day, "HH:MM" to "HH:MM", end
// exclusive; "24:00" is allowed as an end. Spans never run past midnight:
// an overnight opening is two spans, one ending at "24:00" and one starting
// at "00:00" the next day, which NextClose treats as one period.
type Span struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// compiledHours is the compiled form of Hours: the zone resolved and every
// span as offsets from local midnight, sorted, with adjoining spans merged.
type compiledHours struct {
	loc      *time.Location
	weekly   [7][]clockSpan // by time.Weekday
	holidays map[int]bool
	special  map[int][]clockSpan // a present key with no spans is a closed day
}

type clockSpan struct{ start, end time.Duration }

// ParseHours reads a schedule as stored with a skill group. An empty string
// (or JSON null) is no schedule, returned as nil, which is always open: most
// groups never configure hours.
func ParseHours(s string) (*Hours, error) {
	const op = "acd.ParseHours"
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var h *Hours
	if err := dec.Decode(&h); err != nil {
		return nil, errs.E(op, errs.Invalid, "hours: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errs.E(op, errs.Invalid, "hours: unexpected data after the JSON object")
	}
	if h == nil {
		return nil, nil
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h, nil
}

// Validate checks the schedule and caches its compiled form for Open,
// NextOpen and NextClose. Messages name the field, e.g.
// "weekly.mon[1]: end 09:00 before start 10:00". A nil Hours is valid.
func (h *Hours) Validate() error {
	if h == nil {
		return nil
	}
	s, err := h.compile()
	if err != nil {
		return err
	}
	h.sched = s
	return nil
}

const hoursValidateOp = "acd.Hours.Validate"

func (h *Hours) compile() (*compiledHours, error) {
	// "Local" is the server's zone, not the group's: it would change with
	// the machine the binary runs on.
	if h.TimeZone == "Local" {
		return nil, errs.E(hoursValidateOp, errs.Invalid, "time_zone: \"Local\" is not allowed, use an IANA name such as \"Europe/Berlin\"")
	}
	loc, err := time.LoadLocation(h.TimeZone)
	if err != nil {
		return nil, errs.E(hoursValidateOp, errs.Invalid, "time_zone: unknown time zone %q", h.TimeZone)
	}
	s := &compiledHours{loc: loc, holidays: map[int]bool{}, special: map[int][]clockSpan{}}

	for _, k := range slices.Sorted(maps.Keys(h.Weekly)) {
		wd := slices.Index(weekdayKeys[:], k)
		if wd < 0 {
			return nil, errs.E(hoursValidateOp, errs.Invalid, "weekly: unknown day %q, want one of mon, tue, wed, thu, fri, sat, sun", k)
		}
		if s.weekly[wd], err = compileSpans("weekly."+k, h.Weekly[k]); err != nil {
			return nil, err
		}
	}

	if len(h.Holidays) > maxHolidays {
		return nil, errs.E(hoursValidateOp, errs.Invalid, "holidays: %d dates, at most %d", len(h.Holidays), maxHolidays)
	}
	for i, d := range h.Holidays {
		k, ok := parseHoursDate(d)
		if !ok {
			return nil, errs.E(hoursValidateOp, errs.Invalid, "holidays[%d]: %q is not a date YYYY-MM-DD", i, d)
		}
		if s.holidays[k] {
			return nil, errs.E(hoursValidateOp, errs.Invalid, "holidays[%d]: %s listed twice", i, d)
		}
		s.holidays[k] = true
	}

	if len(h.Special) > maxSpecialDays {
		return nil, errs.E(hoursValidateOp, errs.Invalid, "special: %d dates, at most %d", len(h.Special), maxSpecialDays)
	}
	for _, d := range slices.Sorted(maps.Keys(h.Special)) {
		k, ok := parseHoursDate(d)
		if !ok {
			return nil, errs.E(hoursValidateOp, errs.Invalid, "special: %q is not a date YYYY-MM-DD", d)
		}
		// Refused rather than ranked: either precedence would silently
		// drop what the tenant wrote for that day.
		if s.holidays[k] {
			return nil, errs.E(hoursValidateOp, errs.Invalid, "special.%s: date is also a holiday", d)
		}
		if s.special[k], err = compileSpans("special."+d, h.Special[d]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// compileSpans checks one day's spans and returns them sorted and merged.
// field names the day in messages ("weekly.mon").
func compileSpans(field string, in []Span) ([]clockSpan, error) {
	if len(in) > maxSpansPerDay {
		return nil, errs.E(hoursValidateOp, errs.Invalid, "%s: %d spans, at most %d", field, len(in), maxSpansPerDay)
	}
	type indexed struct {
		clockSpan
		i int
	}
	spans := make([]indexed, 0, len(in))
	for i, sp := range in {
		start, ok := parseClock(sp.Start, false)
		if !ok {
			return nil, errs.E(hoursValidateOp, errs.Invalid, "%s[%d].start: %q is not a time HH:MM from 00:00 to 23:59", field, i, sp.Start)
		}
		end, ok := parseClock(sp.End, true)
		if !ok {
			return nil, errs.E(hoursValidateOp, errs.Invalid, "%s[%d].end: %q is not a time HH:MM from 00:00 to 24:00", field, i, sp.End)
		}
		if end < start {
			return nil, errs.E(hoursValidateOp, errs.Invalid, "%s[%d]: end %s before start %s (split an overnight span at 24:00)", field, i, sp.End, sp.Start)
		}
		if end == start {
			return nil, errs.E(hoursValidateOp, errs.Invalid, "%s[%d]: end %s equals start, the span is empty", field, i, sp.End)
		}
		spans = append(spans, indexed{clockSpan{start, end}, i})
	}
	slices.SortFunc(spans, func(a, b indexed) int { return cmp.Compare(a.start, b.start) })

	var out []clockSpan
	for j, sp := range spans {
		if j > 0 && sp.start < spans[j-1].end {
			p := spans[j-1]
			return nil, errs.E(hoursValidateOp, errs.Invalid, "%s[%d] %s-%s overlaps %s[%d] %s-%s",
				field, p.i, in[p.i].Start, in[p.i].End, field, sp.i, in[sp.i].Start, in[sp.i].End)
		}
		// Adjoining spans are one opening, so NextClose does not stop
		// between them.
		if n := len(out); n > 0 && out[n-1].end == sp.start {
			out[n-1].end = sp.end
			continue
		}
		out = append(out, sp.clockSpan)
	}
	return out, nil
}

// parseClock reads "HH:MM" with exactly two digits each, so that stored
// schedules have one spelling. "24:00" is accepted only as an end.
func parseClock(s string, isEnd bool) (time.Duration, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	hh := int(s[0]-'0')*10 + int(s[1]-'0')
	mm := int(s[3]-'0')*10 + int(s[4]-'0')
	if mm > 59 || hh > 24 || hh == 24 && (mm != 0 || !isEnd) {
		return 0, false
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, true
}

// parseHoursDate reads "YYYY-MM-DD" into a map key; time.Parse rejects
// impossible dates such as 2026-02-30.
func parseHoursDate(s string) (int, bool) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Format(time.DateOnly) != s {
		return 0, false
	}
	return civilDateKey(t), true
}

func civilDateKey(t time.Time) int {
	return t.Year()*10000 + int(t.Month())*100 + t.Day()
}

// String is the canonical JSON of the schedule: spans and holidays sorted,
// empty weekly days dropped, so that equal schedules compare equal as text.
// A nil Hours is "".
func (h *Hours) String() string {
	if h == nil {
		return ""
	}
	c := Hours{
		TimeZone: h.TimeZone,
		Weekly:   map[string][]Span{},
		Holidays: slices.Sorted(slices.Values(h.Holidays)),
	}
	for k, spans := range h.Weekly {
		if len(spans) > 0 {
			c.Weekly[k] = sortedSpans(spans)
		}
	}
	if len(h.Special) > 0 {
		c.Special = map[string][]Span{}
		for k, spans := range h.Special {
			c.Special[k] = sortedSpans(spans)
		}
	}
	// Marshal cannot fail here: the value is only strings, slices and maps
	// with string keys.
	b, _ := json.Marshal(c)
	return string(b)
}

// sortedSpans copies spans in start order; the copy keeps an empty list
// non-nil so that a closed special day stays "[]" and not null.
func sortedSpans(spans []Span) []Span {
	out := append([]Span{}, spans...)
	slices.SortFunc(out, func(a, b Span) int { return cmp.Compare(a.Start, b.Start) })
	return out
}

// compiled is the cached schedule, or a fresh one for an Hours that was
// never validated. It is nil for an invalid schedule, which is treated as
// never open: refusing sessions is the visible failure, taking them outside
// hours is not.
func (h *Hours) compiled() *compiledHours {
	if h.sched != nil {
		return h.sched
	}
	s, err := h.compile()
	if err != nil {
		return nil
	}
	return s
}

// Open reports whether the group takes sessions at t. A nil Hours is always
// open.
func (h *Hours) Open(t time.Time) bool {
	if h == nil {
		return true
	}
	s := h.compiled()
	if s == nil {
		return false
	}
	date, tod := wallClock(t.In(s.loc))
	for _, sp := range s.spansOn(date) {
		if sp.start <= tod && tod < sp.end {
			return true
		}
	}
	return false
}

// NextOpen is the first instant at or after t when the group is open: t
// itself when it is open now. It reports false when the group does not open
// within 400 days, e.g. a schedule with no spans. A nil Hours returns
// (t, true).
func (h *Hours) NextOpen(t time.Time) (time.Time, bool) {
	if h == nil {
		return t, true
	}
	return h.next(t, true)
}

// NextClose is when the open period that contains t ends, following spans
// that adjoin across midnight. It reports false when the group is closed at
// t, or stays open for 400 days or more (a nil Hours never closes).
func (h *Hours) NextClose(t time.Time) (time.Time, bool) {
	if h == nil || !h.Open(t) {
		return time.Time{}, false
	}
	return h.next(t, false)
}

// next finds the first instant at or after t when Open(instant) == open.
//
// Within one zone period (between two offset changes) wall clock and real
// time advance together, so the answer found on the wall clock converts by
// plain addition. When it falls past the end of the period, the search
// restarts at the offset change: that instant may itself be the answer,
// e.g. when the clock jumps into or out of a span.
func (h *Hours) next(t time.Time, open bool) (time.Time, bool) {
	s := h.compiled()
	if s == nil {
		return time.Time{}, false
	}
	limit := t.Add(hoursHorizon)
	for cur := t; cur.Before(limit); {
		lt := cur.In(s.loc)
		date, tod := wallClock(lt)
		_, zoneEnd := lt.ZoneBounds()
		days := int(limit.Sub(cur)/fullDay) + 2
		if w, ok := s.nextWall(date, tod, open, days); ok {
			at := cur.Add(w.Sub(date.Add(tod)))
			if zoneEnd.IsZero() || at.Before(zoneEnd) {
				if !at.Before(limit) {
					break
				}
				return at, true
			}
		}
		if zoneEnd.IsZero() {
			break
		}
		cur = zoneEnd
	}
	return time.Time{}, false
}

// nextWall searches the wall clock from date+tod over at most days days for
// the first moment whose state is open. Dates and the result are wall-clock
// times expressed in UTC, which has no offset changes to get in the way.
func (s *compiledHours) nextWall(date time.Time, tod time.Duration, open bool, days int) (time.Time, bool) {
	for range days {
		spans := s.spansOn(date)
		if open {
			for _, sp := range spans {
				if tod < sp.end {
					return date.Add(max(tod, sp.start)), true
				}
			}
		} else {
			// Spans are merged, so at most one contains tod.
			for _, sp := range spans {
				if sp.start <= tod && tod < sp.end {
					tod = sp.end
				}
			}
			if tod < fullDay {
				return date.Add(tod), true
			}
		}
		date = date.AddDate(0, 0, 1)
		tod = 0
	}
	return time.Time{}, false
}

// spansOn is the opening of one wall-clock date: a holiday is closed, a
// special day replaces its weekday.
func (s *compiledHours) spansOn(date time.Time) []clockSpan {
	k := civilDateKey(date)
	if s.holidays[k] {
		return nil
	}
	if spans, ok := s.special[k]; ok {
		return spans
	}
	return s.weekly[date.Weekday()]
}

// wallClock splits a local time into its date (midnight UTC of the same
// calendar day) and the time shown on the clock. The clock time is not the
// time elapsed since local midnight, which differs on a daylight-saving day.
func wallClock(lt time.Time) (date time.Time, tod time.Duration) {
	y, m, d := lt.Date()
	hh, mm, ss := lt.Clock()
	date = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	tod = time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute +
		time.Duration(ss)*time.Second + time.Duration(lt.Nanosecond())
	return date, tod
}

// Location is the schedule's time zone, for telling customers the next
// opening in the group's own time; UTC for a nil or invalid Hours.
func (h *Hours) Location() *time.Location {
	if h == nil {
		return time.UTC
	}
	if s := h.compiled(); s != nil && s.loc != nil {
		return s.loc
	}
	return time.UTC
}
