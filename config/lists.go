package config

import "time"

// ListRefresh configures how `keywatch run` keeps its lists current: it
// checks the list files' modification times every Interval and reloads the
// lists and policies when one changed, and it raises a system alert when a
// list file is older than its maximum age. A file's age is measured from its
// "# published: DATE" comment line when it has one (keywatch lists import
// -stamp writes it), else from its modification time.
type ListRefresh struct {
	// Interval between checks of the list files (default 1m; 0s: only on SIGHUP).
	Interval Duration `yaml:"interval"`
	// MaxAge is the age beyond which a list file raises an alert (default:
	// no limit).
	MaxAge Duration `yaml:"max_age"`
	// MaxAgePerList overrides MaxAge for the named lists (0s: no limit).
	MaxAgePerList map[string]Duration `yaml:"max_age_per_list"`
}

// MaxAgeOf is the maximum age of the named list (0: no limit).
func (r ListRefresh) MaxAgeOf(list string) time.Duration {
	if d, ok := r.MaxAgePerList[list]; ok {
		return d.D()
	}
	return r.MaxAge.D()
}

// validateLists checks the lists: section: each list's name, and that it
// names files.
func validateLists(v *checker, lists map[string][]string) {
	for name, files := range lists {
		p := "lists." + name
		if !nameRe.MatchString(name) {
			v.add(p, "list name %q: use lowercase letters, digits, - and _", name)
		}
		if len(files) == 0 {
			v.add(p, "names no files")
		}
	}
}

// validate defaults the interval to 1m and checks the interval and the ages;
// a maximum age per list must name one of lists.
func (r *ListRefresh) validate(v *checker, lists map[string][]string) {
	if !v.isSet("list_refresh.interval") {
		r.Interval = Duration(time.Minute)
	}

	if r.Interval < 0 {
		v.add("list_refresh.interval", "must not be negative")
	} else if r.Interval > 0 && r.Interval.D() < 100*time.Millisecond {
		v.add("list_refresh.interval", "%s is too short: at least 100ms (0s checks only on SIGHUP)", r.Interval)
	}
	if r.MaxAge < 0 {
		v.add("list_refresh.max_age", "must not be negative")
	}
	for name, d := range r.MaxAgePerList {
		p := "list_refresh.max_age_per_list." + name
		if _, ok := lists[name]; !ok {
			v.add(p, "no list named %q under lists:%s", name, suggestList(name, lists))
		}
		if d < 0 {
			v.add(p, "must not be negative")
		}
	}
}

// suggestList names a configured list close to an unknown name.
func suggestList(name string, lists map[string][]string) string {
	m := make(map[string]int, len(lists))
	for n := range lists {
		m[n] = 0
	}
	return suggest(name, m)
}
