package httpapi

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClientIPKey(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		realIP  string
		want    string
	}{
		{name: "peer address", remote: "203.0.113.7:5555", want: "203.0.113.7"},
		{name: "no port", remote: "203.0.113.7", want: "203.0.113.7"},
		{name: "forged XFF ignored without trusted proxies", remote: "203.0.113.7:5555", xff: []string{"198.51.100.1"}, want: "203.0.113.7"},
		{name: "forged X-Real-IP ignored without trusted proxies", remote: "203.0.113.7:5555", realIP: "198.51.100.1", want: "203.0.113.7"},
		{name: "XFF from an untrusted peer ignored", trusted: trusted, remote: "203.0.113.7:5555", xff: []string{"198.51.100.1"}, want: "203.0.113.7"},
		{name: "XFF from a trusted peer", trusted: trusted, remote: "10.0.0.2:5555", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "XFF walked from the right past trusted hops", trusted: trusted, remote: "10.0.0.2:5555",
			xff: []string{"1.1.1.1, 198.51.100.1, 10.0.0.9"}, want: "198.51.100.1"},
		{name: "client-written entries left of the client ignored", trusted: trusted, remote: "10.0.0.2:5555",
			xff: []string{"10.0.0.5, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "several XFF headers are one list", trusted: trusted, remote: "10.0.0.2:5555",
			xff: []string{"1.1.1.1", "198.51.100.1, 10.0.0.3"}, want: "198.51.100.1"},
		{name: "garbage hop ends the walk at the last good address", trusted: trusted, remote: "10.0.0.2:5555",
			xff: []string{"198.51.100.1, nonsense, 10.0.0.3"}, want: "10.0.0.3"},
		{name: "all hops trusted", trusted: trusted, remote: "10.0.0.2:5555", xff: []string{"10.0.0.4, 10.0.0.3"}, want: "10.0.0.4"},
		{name: "X-Real-IP from a trusted peer", trusted: trusted, remote: "10.0.0.2:5555", realIP: "198.51.100.1", want: "198.51.100.1"},
		{name: "unparsable X-Real-IP falls back to the peer", trusted: trusted, remote: "10.0.0.2:5555", realIP: "bogus", want: "10.0.0.2"},
		{name: "XFF with port", trusted: trusted, remote: "10.0.0.2:5555", xff: []string{"198.51.100.1:4444"}, want: "198.51.100.1"},
		{name: "IPv6 grouped by /64", remote: "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", want: "2001:db8:1:2::/64"},
		{name: "IPv6 neighbour in the same /64", remote: "[2001:db8:1:2::1]:443", want: "2001:db8:1:2::/64"},
		{name: "IPv6 zone dropped", remote: "[fe80::1%eth0]:443", want: "fe80::/64"},
		{name: "IPv4-mapped IPv6 is IPv4", remote: "[::ffff:203.0.113.7]:443", want: "203.0.113.7"},
		{name: "IPv6 XFF from a trusted IPv6 proxy", trusted: trusted, remote: "[fd00::2]:443", xff: []string{"2001:db8:9:9::42"}, want: "2001:db8:9:9::/64"},
		{name: "unparsable peer keyed as is", remote: "pipe", want: "peer:pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				r.Header.Set("X-Real-IP", tt.realIP)
			}
			assert.Equal(t, tt.want, clientIPs{trusted: tt.trusted}.key(r))
		})
	}
}

func TestClientIPAddress(t *testing.T) {
	c := clientIPs{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.2:5555"
	r.Header.Set("X-Forwarded-For", "2001:db8::1")
	assert.Equal(t, "2001:db8::1", c.address(r), "logs get the whole address, not the /64")
	r.RemoteAddr = "pipe"
	assert.Equal(t, "pipe", c.address(r))
}
