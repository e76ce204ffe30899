package nixos

import "testing"

func TestPackageOf(t *testing.T) {
	h := "/nix/store/" + "0123456789abcdfghijklmnpqrsvwxyz" + "-"
	for _, c := range []struct{ path, name, version string }{
		{h + "hello-2.12.1", "hello", "2.12.1"},
		{h + "openssl-3.0.13-bin", "openssl", "3.0.13"},
		{h + "python3-3.11.9", "python3", "3.11.9"},
		{h + "nixos-system-web-24.05.1234", "nixos-system-web", "24.05.1234"},
		{h + "unit-sshd.service", "unit-sshd.service", ""},
		{h + "etc", "etc", ""},
		{h + "linux-6.1.0-modules", "linux", "6.1.0"},
		{h + "xz-5.4.6-dev", "xz", "5.4.6"},
		{h + "source", "source", ""},
	} {
		name, version := packageOf(c.path)
		if name != c.name || version != c.version {
			t.Errorf("packageOf(%q) = %q, %q; want %q, %q", c.path, name, version, c.name, c.version)
		}
	}
}

func TestBytesText(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1536, "1.5 KiB"}, {5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}, {-2048, "2.0 KiB"}} {
		if got := bytesText(c.n); got != c.want {
			t.Errorf("bytesText(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
