package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // owners' time zones resolve on machines without tzdata
)

// Hours is an owner's working time: a span of the day on some days of the
// week, in their time zone.
type Hours struct {
	Start, End time.Duration // offsets from local midnight
	Loc        *time.Location
	// Days are the working days; a span past midnight belongs to the day
	// it starts on. All seven when the hours name none.
	Days [7]bool // indexed by time.Weekday
}

var hoursRe = regexp.MustCompile(`^(?:(\S+)\s+)?(\d{2}):(\d{2})-(\d{2}):(\d{2})\s+(\S+)$`)

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

const hoursForm = "want [DAYS] HH:MM-HH:MM and a time zone, e.g. 09:00-18:00 America/New_York or Mon-Fri 09:00-18:00 America/New_York"

// ParseHours reads "09:00-18:00 America/New_York", optionally preceded by
// the working days: "Mon-Fri 09:00-18:00 Europe/Berlin",
// "Sun-Thu 08:00-17:00 Asia/Jerusalem", "Mon,Wed,Fri 10:00-14:00 UTC".
func ParseHours(s string) (Hours, error) {
	m := hoursRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Hours{}, fmt.Errorf("%q: %s", s, hoursForm)
	}
	num := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	if num(2) > 23 || num(4) > 24 || num(3) > 59 || num(5) > 59 || (num(4) == 24 && num(5) != 0) {
		return Hours{}, fmt.Errorf("%q: hours run 00:00 to 24:00", s)
	}
	loc, err := time.LoadLocation(m[6])
	if err != nil {
		return Hours{}, fmt.Errorf("%q: unknown time zone %q", s, m[6])
	}
	h := Hours{
		Start: time.Duration(num(2))*time.Hour + time.Duration(num(3))*time.Minute,
		End:   time.Duration(num(4))*time.Hour + time.Duration(num(5))*time.Minute,
		Loc:   loc,
	}
	if h.Start == h.End {
		return Hours{}, fmt.Errorf("%q: start and end are the same", s)
	}
	if m[1] == "" {
		h.Days = [7]bool{true, true, true, true, true, true, true}
		return h, nil
	}
	for _, part := range strings.Split(m[1], ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := weekdays[strings.ToLower(from)]
		b := a
		if ok && isRange {
			b, ok = weekdays[strings.ToLower(to)]
		}
		if !ok {
			return Hours{}, fmt.Errorf("%q: %q is not a day or a range of days (Mon, Tue, Wed, Thu, Fri, Sat, Sun; Mon-Fri)", s, part)
		}
		for d := a; ; d = (d + 1) % 7 { // a range may wrap: Fri-Mon
			h.Days[d] = true
			if d == b {
				break
			}
		}
	}
	return h, nil
}

// String writes the hours as ParseHours reads them.
func (h Hours) String() string {
	hm := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	out := hm(h.Start) + "-" + hm(h.End) + " " + h.Loc.String()
	if days := h.days(); days != "" {
		out = days + " " + out
	}
	return out
}

// days writes the working days ("Mon-Fri", "Mon,Wed,Fri"), or "" for all
// seven.
func (h Hours) days() string {
	all := true
	for _, on := range h.Days {
		all = all && on
	}
	if all {
		return ""
	}
	// Runs of consecutive days, read from Monday, or from the start of a
	// run that goes through Sunday into Monday (Sun-Thu, Fri-Mon).
	first := time.Monday
	for i := 0; i < 6 && h.Days[(first+6)%7]; i++ {
		first = (first + 6) % 7
	}
	day := func(k int) time.Weekday { return (first + time.Weekday(k)) % 7 }
	name := func(k int) string { return day(k).String()[:3] }
	var parts []string
	for i := 0; i < 7; {
		if !h.Days[day(i)] {
			i++
			continue
		}
		j := i
		for j+1 < 7 && h.Days[day(j+1)] {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, name(i))
		case j == i+1:
			parts = append(parts, name(i), name(j))
		default:
			parts = append(parts, name(i)+"-"+name(j))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// Contains reports whether t falls inside the working hours. A span may run
// past midnight (22:00-06:00); its hours after midnight belong to the day it
// started on.
func (h Hours) Contains(t time.Time) bool {
	lt := t.In(h.Loc)
	since := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second
	today, yesterday := h.Days[lt.Weekday()], h.Days[(lt.Weekday()+6)%7]
	if h.Start < h.End {
		return today && since >= h.Start && since < h.End
	}
	return (today && since >= h.Start) || (yesterday && since < h.End)
}
