package sdk

import (
	"fmt"
	"os"
)

// ParseFileMode reads an octal file mode of three to five digits ("644",
// "0600", "4755") into an os.FileMode, setuid, setgid and sticky bits
// included. Providers that write files take their `mode` inputs with it.
func ParseFileMode(s string) (os.FileMode, error) {
	if len(s) < 3 || len(s) > 5 {
		return 0, fmt.Errorf("%q is not an octal mode like \"0644\": want 3 to 5 octal digits", s)
	}
	var n uint32
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, fmt.Errorf("%q is not an octal mode like \"0644\": %q is not an octal digit", s, c)
		}
		n = n<<3 | uint32(c-'0')
	}
	if n > 0o7777 {
		return 0, fmt.Errorf("mode %q is above 07777", s)
	}
	m := os.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m, nil
}
