package acd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Schedules shared by the table below. 2026-03-08 and 2026-11-01 are the
// American daylight-saving Sundays, 2026-03-29 and 2026-10-25 the European
// ones; 2026-03-09 is a Monday and 2026-12-25 a Friday.
const (
	nySkippedStart = `{"time_zone":"America/New_York","weekly":{"sun":[{"start":"02:30","end":"05:00"}]}}`
	nySkippedEnd   = `{"time_zone":"America/New_York","weekly":{"sun":[{"start":"00:00","end":"02:30"}]}}`
	nyMorning      = `{"time_zone":"America/New_York","weekly":{"sun":[{"start":"00:00","end":"12:00"}]}}`
	nyRepeated     = `{"time_zone":"America/New_York","weekly":{"sun":[{"start":"00:00","end":"01:30"}]}}`
	nyOvernight    = `{"time_zone":"America/New_York","weekly":{"sat":[{"start":"20:00","end":"24:00"}],"sun":[{"start":"00:00","end":"03:00"}]}}`
	berlin         = `{"time_zone":"Europe/Berlin","weekly":{"sat":[{"start":"22:00","end":"24:00"}],"sun":[{"start":"00:00","end":"08:00"},{"start":"09:00","end":"17:00"}]}}`
	overMidnight   = `{"weekly":{"mon":[{"start":"20:00","end":"24:00"}],"tue":[{"start":"00:00","end":"02:00"},{"start":"09:00","end":"17:00"}]}}`
	adjoining      = `{"weekly":{"wed":[{"start":"12:00","end":"13:00"},{"start":"09:00","end":"12:00"}]}}`
	shanghai       = `{"time_zone":"Asia/Shanghai","weekly":{"mon":[{"start":"09:00","end":"18:00"}]}}`
	neverOpen      = `{"weekly":{"mon":[]}}`
	farSpecial     = `{"weekly":{},"special":{"2027-12-31":[{"start":"09:00","end":"10:00"}]}}`
	// Weekdays 09:00-17:00, Thursday nights running into Friday morning.
	// Christmas Eve opens only in the evening, Christmas is a holiday, the
	// Saturday after opens for a sale, New Year's Eve is closed.
	holidays = `{"weekly":{
		"mon":[{"start":"09:00","end":"17:00"}],
		"tue":[{"start":"09:00","end":"17:00"}],
		"wed":[{"start":"09:00","end":"17:00"}],
		"thu":[{"start":"09:00","end":"17:00"},{"start":"20:00","end":"24:00"}],
		"fri":[{"start":"00:00","end":"02:00"},{"start":"09:00","end":"17:00"}]},
		"holidays":["2026-12-25","2027-01-01"],
		"special":{
			"2026-12-24":[{"start":"16:00","end":"24:00"}],
			"2026-12-26":[{"start":"10:00","end":"14:00"}],
			"2026-12-31":[]}}`
)

// allWeek is open around the clock in zone, closed on the given holidays.
func allWeek(zone string, holidays ...string) string {
	var days []string
	for _, d := range weekdayKeys {
		days = append(days, fmt.Sprintf(`%q:[{"start":"00:00","end":"24:00"}]`, d))
	}
	hs := `[]`
	if len(holidays) > 0 {
		hs = `["` + strings.Join(holidays, `","`) + `"]`
	}
	return fmt.Sprintf(`{"time_zone":%q,"weekly":{%s},"holidays":%s}`, zone, strings.Join(days, ","), hs)
}

func TestHoursOpenNextOpenNextClose(t *testing.T) {
	tests := []struct {
		name  string
		hours string // JSON for ParseHours; "" is the nil Hours
		at    string // RFC 3339, in any zone
		want  hoursAnswer
	}{
		{"nil is open", "", "2026-03-09T03:00:00Z",
			hoursAnswer{Open: true, NextOpen: "2026-03-09T03:00:00Z", NextClose: "none"}},

		// America/New_York springs forward at 02:00 EST to 03:00 EDT.
		{"span starting in skipped hour opens at the jump", nySkippedStart, "2026-03-08T01:59:00-05:00",
			hoursAnswer{Open: false, NextOpen: "2026-03-08T03:00:00-04:00", NextClose: "none"}},
		{"span starting in skipped hour is open after the jump", nySkippedStart, "2026-03-08T03:00:00-04:00",
			hoursAnswer{Open: true, NextOpen: "2026-03-08T03:00:00-04:00", NextClose: "2026-03-08T05:00:00-04:00"}},
		{"span starting in skipped hour, a week before", nySkippedStart, "2026-03-01T06:00:00-05:00",
			hoursAnswer{Open: false, NextOpen: "2026-03-08T03:00:00-04:00", NextClose: "none"}},
		{"span ending in skipped hour closes at the jump", nySkippedEnd, "2026-03-08T01:00:00-05:00",
			hoursAnswer{Open: true, NextOpen: "2026-03-08T01:00:00-05:00", NextClose: "2026-03-08T03:00:00-04:00"}},
		{"short day closes by the wall clock", nyMorning, "2026-03-08T00:00:00-05:00",
			hoursAnswer{Open: true, NextOpen: "2026-03-08T00:00:00-05:00", NextClose: "2026-03-08T12:00:00-04:00"}},
		{"overnight into the skipped hour", nyOvernight, "2026-03-07T23:00:00-05:00",
			hoursAnswer{Open: true, NextOpen: "2026-03-07T23:00:00-05:00", NextClose: "2026-03-08T03:00:00-04:00"}},

		// America/New_York falls back at 02:00 EDT to 01:00 EST.
		{"first pass of repeated hour closes at 01:30 EDT", nyRepeated, "2026-11-01T01:15:00-04:00",
			hoursAnswer{Open: true, NextOpen: "2026-11-01T01:15:00-04:00", NextClose: "2026-11-01T01:30:00-04:00"}},
		{"repeated hour opens again on the second pass", nyRepeated, "2026-11-01T01:40:00-04:00",
			hoursAnswer{Open: false, NextOpen: "2026-11-01T01:00:00-05:00", NextClose: "none"}},
		{"second pass of repeated hour closes at 01:30 EST", nyRepeated, "2026-11-01T01:20:00-05:00",
			hoursAnswer{Open: true, NextOpen: "2026-11-01T01:20:00-05:00", NextClose: "2026-11-01T01:30:00-05:00"}},
		{"overnight through the long night", nyOvernight, "2026-10-31T23:00:00-04:00",
			hoursAnswer{Open: true, NextOpen: "2026-10-31T23:00:00-04:00", NextClose: "2026-11-01T03:00:00-05:00"}},

		// Europe/Berlin: 02:00 CET to 03:00 CEST, then 03:00 CEST to 02:00 CET.
		{"berlin overnight across spring forward", berlin, "2026-03-28T22:00:00+01:00",
			hoursAnswer{Open: true, NextOpen: "2026-03-28T22:00:00+01:00", NextClose: "2026-03-29T08:00:00+02:00"}},
		{"berlin gap between spans after spring forward", berlin, "2026-03-29T08:30:00+02:00",
			hoursAnswer{Open: false, NextOpen: "2026-03-29T09:00:00+02:00", NextClose: "none"}},
		{"berlin overnight across fall back", berlin, "2026-10-24T23:30:00+02:00",
			hoursAnswer{Open: true, NextOpen: "2026-10-24T23:30:00+02:00", NextClose: "2026-10-25T08:00:00+01:00"}},
		{"berlin repeated hour, first pass", berlin, "2026-10-25T02:30:00+02:00",
			hoursAnswer{Open: true, NextOpen: "2026-10-25T02:30:00+02:00", NextClose: "2026-10-25T08:00:00+01:00"}},
		{"berlin end is exclusive", berlin, "2026-10-25T08:00:00+01:00",
			hoursAnswer{Open: false, NextOpen: "2026-10-25T09:00:00+01:00", NextClose: "none"}},
		{"berlin open for months across both changes", allWeek("Europe/Berlin", "2027-01-01"), "2026-03-09T12:00:00+01:00",
			hoursAnswer{Open: true, NextOpen: "2026-03-09T12:00:00+01:00", NextClose: "2027-01-01T00:00:00+01:00"}},

		{"24:00 continues into 00:00", overMidnight, "2026-03-09T23:00:00Z",
			hoursAnswer{Open: true, NextOpen: "2026-03-09T23:00:00Z", NextClose: "2026-03-10T02:00:00Z"}},
		{"start is inclusive", overMidnight, "2026-03-09T20:00:00Z",
			hoursAnswer{Open: true, NextOpen: "2026-03-09T20:00:00Z", NextClose: "2026-03-10T02:00:00Z"}},
		{"just before the start", overMidnight, "2026-03-09T19:59:59.5Z",
			hoursAnswer{Open: false, NextOpen: "2026-03-09T20:00:00Z", NextClose: "none"}},
		{"end is exclusive", overMidnight, "2026-03-10T02:00:00Z",
			hoursAnswer{Open: false, NextOpen: "2026-03-10T09:00:00Z", NextClose: "none"}},
		{"adjoining spans in a day are one period", adjoining, "2026-03-11T10:00:00Z",
			hoursAnswer{Open: true, NextOpen: "2026-03-11T10:00:00Z", NextClose: "2026-03-11T13:00:00Z"}},
		{"open all week never closes", allWeek(""), "2026-03-09T12:00:00Z",
			hoursAnswer{Open: true, NextOpen: "2026-03-09T12:00:00Z", NextClose: "none"}},

		{"special day replaces weekly spans", holidays, "2026-12-24T10:00:00Z",
			hoursAnswer{Open: false, NextOpen: "2026-12-24T16:00:00Z", NextClose: "none"}},
		{"holiday stops a span at 24:00", holidays, "2026-12-24T22:00:00Z",
			hoursAnswer{Open: true, NextOpen: "2026-12-24T22:00:00Z", NextClose: "2026-12-25T00:00:00Z"}},
		{"ordinary thursday night runs into friday", holidays, "2026-12-17T21:00:00Z",
			hoursAnswer{Open: true, NextOpen: "2026-12-17T21:00:00Z", NextClose: "2026-12-18T02:00:00Z"}},
		{"holiday is closed, next is a special saturday", holidays, "2026-12-25T12:00:00Z",
			hoursAnswer{Open: false, NextOpen: "2026-12-26T10:00:00Z", NextClose: "none"}},
		{"special saturday is open", holidays, "2026-12-26T11:00:00Z",
			hoursAnswer{Open: true, NextOpen: "2026-12-26T11:00:00Z", NextClose: "2026-12-26T14:00:00Z"}},
		{"empty special day is closed, and so is the holiday after", holidays, "2026-12-31T10:00:00Z",
			hoursAnswer{Open: false, NextOpen: "2027-01-04T09:00:00Z", NextClose: "none"}},

		{"never open", neverOpen, "2026-03-09T12:00:00Z",
			hoursAnswer{Open: false, NextOpen: "none", NextClose: "none"}},
		{"opening beyond 400 days is not found", farSpecial, "2026-03-09T12:00:00Z",
			hoursAnswer{Open: false, NextOpen: "none", NextClose: "none"}},
		{"opening within 400 days is found", farSpecial, "2027-01-01T00:00:00Z",
			hoursAnswer{Open: false, NextOpen: "2027-12-31T09:00:00Z", NextClose: "none"}},

		// Monday 09:00-18:00 in Shanghai (UTC+8) is Monday 01:00-10:00 UTC.
		{"utc sunday is shanghai monday morning", shanghai, "2026-03-08T23:30:00Z",
			hoursAnswer{Open: false, NextOpen: "2026-03-09T01:00:00Z", NextClose: "none"}},
		{"shanghai open, asked in utc", shanghai, "2026-03-09T02:00:00Z",
			hoursAnswer{Open: true, NextOpen: "2026-03-09T02:00:00Z", NextClose: "2026-03-09T10:00:00Z"}},
		{"utc monday is shanghai tuesday", shanghai, "2026-03-09T17:00:00Z",
			hoursAnswer{Open: false, NextOpen: "2026-03-16T01:00:00Z", NextClose: "none"}},
		{"shanghai open, asked in new york time", shanghai, "2026-03-08T21:00:00-04:00",
			hoursAnswer{Open: true, NextOpen: "2026-03-09T01:00:00Z", NextClose: "2026-03-09T10:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHours(tt.hours)
			if err != nil {
				t.Fatalf("ParseHours: %v", err)
			}
			at := mustTime(t, tt.at)
			want := hoursAnswer{Open: tt.want.Open, NextOpen: utc(t, tt.want.NextOpen), NextClose: utc(t, tt.want.NextClose)}
			if d := cmp.Diff(want, answer(h, at)); d != "" {
				t.Errorf("at %s (-want +got):\n%s", tt.at, d)
			}
			checkEdges(t, h, at)
		})
	}
}

// hoursAnswer holds what a schedule says about one instant, times in UTC
// RFC 3339 and "none" for a false second result, so diffs read plainly.
type hoursAnswer struct {
	Open      bool
	NextOpen  string
	NextClose string
}

func answer(h *Hours, at time.Time) hoursAnswer {
	show := func(t time.Time, ok bool) string {
		if !ok {
			return "none"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return hoursAnswer{Open: h.Open(at), NextOpen: show(h.NextOpen(at)), NextClose: show(h.NextClose(at))}
}

// checkEdges holds NextOpen and NextClose to their definitions against
// Open: the state changes exactly at the instants they return.
func checkEdges(t *testing.T, h *Hours, at time.Time) {
	t.Helper()
	if o, ok := h.NextOpen(at); ok {
		if !h.Open(o) {
			t.Errorf("NextOpen(%s) = %s, which is not open", at, o)
		}
		if o.After(at) && h.Open(o.Add(-time.Nanosecond)) {
			t.Errorf("NextOpen(%s) = %s, but it is open just before", at, o)
		}
	}
	if c, ok := h.NextClose(at); ok {
		if h.Open(c) {
			t.Errorf("NextClose(%s) = %s, which is open", at, c)
		}
		if !h.Open(c.Add(-time.Nanosecond)) {
			t.Errorf("NextClose(%s) = %s, but it is closed just before", at, c)
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func utc(t *testing.T, s string) string {
	t.Helper()
	if s == "none" {
		return s
	}
	return mustTime(t, s).UTC().Format(time.RFC3339Nano)
}

// TestHoursNotValidated covers an Hours built in code: it still works, only
// without the cached compiled form, and an invalid one is never open.
func TestHoursNotValidated(t *testing.T) {
	at := mustTime(t, "2026-03-09T02:00:00Z") // Monday 10:00 in Shanghai
	h := &Hours{TimeZone: "Asia/Shanghai", Weekly: map[string][]Span{"mon": {{Start: "09:00", End: "18:00"}}}}
	if !h.Open(at) {
		t.Error("valid Hours without Validate: Open = false, want true")
	}
	bad := &Hours{TimeZone: "Nowhere/City", Weekly: h.Weekly}
	if bad.Open(at) {
		t.Error("invalid Hours: Open = true, want false")
	}
	if _, ok := bad.NextOpen(at); ok {
		t.Error("invalid Hours: NextOpen ok = true, want false")
	}
}

func TestHoursValidateRejects(t *testing.T) {
	many := func(n int, item func(i int) string) string {
		var items []string
		for i := range n {
			items = append(items, item(i))
		}
		return strings.Join(items, ",")
	}
	day := func(i int) time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i) }
	tests := []struct {
		name  string
		hours string
		want  string // the client message starts with this
	}{
		{"unknown day", `{"weekly":{"monday":[]}}`, `weekly: unknown day "monday"`},
		{"hour 25", `{"weekly":{"mon":[{"start":"09:00","end":"25:00"}]}}`, `weekly.mon[0].end: "25:00" is not a time HH:MM`},
		{"one-digit hour", `{"weekly":{"mon":[{"start":"9:00","end":"17:00"}]}}`, `weekly.mon[0].start: "9:00" is not a time HH:MM`},
		{"minute 60", `{"weekly":{"mon":[{"start":"09:60","end":"17:00"}]}}`, `weekly.mon[0].start: "09:60" is not`},
		{"24:00 as start", `{"weekly":{"mon":[{"start":"24:00","end":"24:00"}]}}`, `weekly.mon[0].start: "24:00" is not`},
		{"24:30 as end", `{"weekly":{"mon":[{"start":"20:00","end":"24:30"}]}}`, `weekly.mon[0].end: "24:30" is not`},
		{"end before start", `{"weekly":{"mon":[{"start":"07:00","end":"08:00"},{"start":"10:00","end":"09:00"}]}}`, `weekly.mon[1]: end 09:00 before start 10:00`},
		{"end equals start", `{"weekly":{"mon":[{"start":"09:00","end":"09:00"}]}}`, `weekly.mon[0]: end 09:00 equals start`},
		{"overlap", `{"weekly":{"tue":[{"start":"09:00","end":"12:00"},{"start":"11:00","end":"13:00"}]}}`, `weekly.tue[0] 09:00-12:00 overlaps weekly.tue[1] 11:00-13:00`},
		{"overlap out of order", `{"weekly":{"tue":[{"start":"11:00","end":"13:00"},{"start":"09:00","end":"12:00"}]}}`, `weekly.tue[1] 09:00-12:00 overlaps weekly.tue[0] 11:00-13:00`},
		{"nine spans", `{"weekly":{"mon":[` + many(9, func(i int) string {
			return fmt.Sprintf(`{"start":"%02d:00","end":"%02d:30"}`, i, i)
		}) + `]}}`, `weekly.mon: 9 spans, at most 8`},
		{"bad zone", `{"time_zone":"Mars/Olympus","weekly":{}}`, `time_zone: unknown time zone "Mars/Olympus"`},
		{"local zone", `{"time_zone":"Local","weekly":{}}`, `time_zone: "Local" is not allowed`},
		{"impossible holiday", `{"weekly":{},"holidays":["2026-02-30"]}`, `holidays[0]: "2026-02-30" is not a date YYYY-MM-DD`},
		{"holiday without leading zero", `{"weekly":{},"holidays":["2026-12-25","2026-1-01"]}`, `holidays[1]: "2026-1-01" is not a date`},
		{"holiday twice", `{"weekly":{},"holidays":["2026-12-25","2026-12-25"]}`, `holidays[1]: 2026-12-25 listed twice`},
		{"367 holidays", `{"weekly":{},"holidays":[` + many(367, func(i int) string {
			return `"` + day(i).Format(time.DateOnly) + `"`
		}) + `]}`, `holidays: 367 dates, at most 366`},
		{"bad special date", `{"weekly":{},"special":{"2026-13-01":[]}}`, `special: "2026-13-01" is not a date`},
		{"bad special span", `{"weekly":{},"special":{"2026-12-24":[{"start":"16:00","end":"25:00"}]}}`, `special.2026-12-24[0].end: "25:00" is not`},
		{"special day is a holiday", `{"weekly":{},"holidays":["2026-12-24"],"special":{"2026-12-24":[]}}`, `special.2026-12-24: date is also a holiday`},
		{"367 special days", `{"weekly":{},"special":{` + many(367, func(i int) string {
			return `"` + day(i).Format(time.DateOnly) + `":[]`
		}) + `}}`, `special: 367 dates, at most 366`},
		{"unknown field", `{"weekly":{},"timezone":"UTC"}`, `hours: json: unknown field "timezone"`},
		{"unknown span field", `{"weekly":{"mon":[{"start":"09:00","end":"17:00","note":"x"}]}}`, `hours: json: unknown field "note"`},
		{"not json", `mon-fri 9-5`, `hours: invalid character`},
		{"trailing data", `{"weekly":{}} {}`, `hours: unexpected data after the JSON object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHours(tt.hours)
			if err == nil {
				t.Fatalf("ParseHours = %s, want error %q", h, tt.want)
			}
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("code = %q, want %q", errs.CodeOf(err), errs.Invalid)
			}
			if msg := errs.MessageOf(err); !strings.HasPrefix(msg, tt.want) {
				t.Errorf("message = %q, want prefix %q", msg, tt.want)
			}
		})
	}
}

func TestHoursValidateAccepts(t *testing.T) {
	tests := []struct {
		name    string
		hours   string
		wantNil bool
	}{
		{"empty", "", true},
		{"whitespace", " \n\t", true},
		{"json null", "null", true},
		{"empty object", `{}`, false},
		{"utc by name", `{"time_zone":"UTC","weekly":{}}`, false},
		{"24:00 end and 00:00 start", overMidnight, false},
		{"adjoining spans", adjoining, false},
		{"eight spans", `{"weekly":{"sun":[{"start":"00:00","end":"01:00"},{"start":"02:00","end":"03:00"},{"start":"04:00","end":"05:00"},{"start":"06:00","end":"07:00"},{"start":"08:00","end":"09:00"},{"start":"10:00","end":"11:00"},{"start":"12:00","end":"13:00"},{"start":"14:00","end":"24:00"}]}}`, false},
		{"leap day", `{"weekly":{},"holidays":["2028-02-29"]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHours(tt.hours)
			if err != nil {
				t.Fatalf("ParseHours: %v", err)
			}
			if (h == nil) != tt.wantNil {
				t.Errorf("ParseHours = %v, want nil %v", h, tt.wantNil)
			}
		})
	}
	var nilHours *Hours
	if err := nilHours.Validate(); err != nil {
		t.Errorf("nil Validate = %v, want nil", err)
	}
}

func TestHoursStringRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		hours string
		want  string
	}{
		{"nil", "", ""},
		{"empty", `{}`, `{"time_zone":"","weekly":{}}`},
		{"sorted and empty weekdays dropped",
			`{"time_zone":"Europe/Berlin",
			  "weekly":{"tue":[{"start":"13:00","end":"17:00"},{"start":"09:00","end":"12:00"}],"mon":[{"start":"09:00","end":"17:00"}],"sun":[]},
			  "holidays":["2026-12-26","2026-12-25"],
			  "special":{"2026-12-31":[{"start":"09:00","end":"12:00"}],"2026-12-24":[]}}`,
			`{"time_zone":"Europe/Berlin",` +
				`"weekly":{"mon":[{"start":"09:00","end":"17:00"}],"tue":[{"start":"09:00","end":"12:00"},{"start":"13:00","end":"17:00"}]},` +
				`"holidays":["2026-12-25","2026-12-26"],` +
				`"special":{"2026-12-24":[],"2026-12-31":[{"start":"09:00","end":"12:00"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHours(tt.hours)
			if err != nil {
				t.Fatalf("ParseHours: %v", err)
			}
			if d := cmp.Diff(tt.want, h.String()); d != "" {
				t.Errorf("String (-want +got):\n%s", d)
			}
			checkRoundTrip(t, h)
		})
	}
	for _, s := range []string{nyOvernight, berlin, shanghai, holidays, farSpecial, allWeek("Asia/Kolkata")} {
		h, err := ParseHours(s)
		if err != nil {
			t.Fatalf("ParseHours(%s): %v", s, err)
		}
		checkRoundTrip(t, h)
	}
}

// checkRoundTrip holds String to being parseable and a fixed point.
func checkRoundTrip(t *testing.T, h *Hours) {
	t.Helper()
	again, err := ParseHours(h.String())
	if err != nil {
		t.Fatalf("ParseHours(%q): %v", h.String(), err)
	}
	if d := cmp.Diff(h.String(), again.String()); d != "" {
		t.Errorf("String after round trip (-first +second):\n%s", d)
	}
}

func FuzzParseHours(f *testing.F) {
	for _, s := range []string{"", "null", `{}`, nySkippedStart, nyOvernight, berlin, overMidnight, adjoining, shanghai, neverOpen, farSpecial, holidays, allWeek("Asia/Kolkata")} {
		f.Add(s)
	}
	at := time.Date(2026, 3, 8, 6, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHours(s)
		if err != nil {
			return
		}
		checkRoundTrip(t, h)
		checkEdges(t, h, at)
	})
}

func BenchmarkHoursOpen(b *testing.B) {
	h, err := ParseHours(holidays)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 12, 17, 21, 0, 0, 0, time.UTC)
	for b.Loop() {
		h.Open(at)
	}
}
