package cdc

import "time"

// parseDateTime reads the datetimes DMS writes, in either form the design
// allows: "2020-05-01T17:11:49.973Z" or "2020-05-01 17:11:49.973". The
// fraction (any number of digits, nanoseconds kept) and the zone (Z, ±HH:MM,
// ±HHMM or ±HH) are optional. A time without a zone is taken as it is
// (MySQL DATETIME has none); one with a zone is converted to UTC. The result
// is always in UTC and within years 0000-9999, so it formats in four digits.
func parseDateTime(b []byte) (time.Time, bool) {
	b = trimSpace(b)
	if len(b) < len("2006-01-02 15:04:05") || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	if c := b[10]; c != 'T' && c != 't' && c != ' ' {
		return time.Time{}, false
	}
	year, ok1 := atoiFixed(b[0:4])
	month, ok2 := atoiFixed(b[5:7])
	day, ok3 := atoiFixed(b[8:10])
	hour, ok4 := atoiFixed(b[11:13])
	minute, ok5 := atoiFixed(b[14:16])
	sec, ok6 := atoiFixed(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}

	rest := b[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		i, scale := 1, 100_000_000
		for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9'; i++ {
			nsec += int(rest[i]-'0') * scale
			scale /= 10 // digits past nanoseconds add nothing
		}
		if i == 1 {
			return time.Time{}, false
		}
		rest = rest[i:]
	}

	offset := 0 // seconds east of UTC
	if len(rest) > 0 {
		switch rest[0] {
		case 'Z', 'z':
			if len(rest) != 1 {
				return time.Time{}, false
			}
		case '+', '-':
			z := rest[1:]
			var hh, mm int
			var okH, okM bool
			switch {
			case len(z) == 2:
				hh, okH = atoiFixed(z)
				okM = true
			case len(z) == 4:
				hh, okH = atoiFixed(z[0:2])
				mm, okM = atoiFixed(z[2:4])
			case len(z) == 5 && z[2] == ':':
				hh, okH = atoiFixed(z[0:2])
				mm, okM = atoiFixed(z[3:5])
			}
			if !okH || !okM || hh > 23 || mm > 59 {
				return time.Time{}, false
			}
			offset = hh*3600 + mm*60
			if rest[0] == '-' {
				offset = -offset
			}
		default:
			return time.Time{}, false
		}
	}

	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if offset != 0 {
		t = t.Add(-time.Duration(offset) * time.Second)
		if y := t.Year(); y < 0 || y > 9999 {
			return time.Time{}, false
		}
	}
	return t, true
}

// appendDateTime writes t as "YYYY-MM-DD HH:MM:SS" followed by a point and
// fracDigits digits of its fraction, truncated. t must be within years
// 0000-9999.
func appendDateTime(dst []byte, t time.Time, fracDigits int) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	dst = append(dst,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-',
		byte('0'+d/10), byte('0'+d%10), ' ',
		byte('0'+h/10), byte('0'+h%10), ':',
		byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10))
	if fracDigits > 0 {
		dst = append(dst, '.')
		ns := t.Nanosecond()
		for div := 100_000_000; fracDigits > 0; fracDigits-- {
			dst = append(dst, byte('0'+ns/div%10))
			div /= 10
		}
	}
	return dst
}

// atoiFixed parses a run of decimal digits of known, small length.
func atoiFixed(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
