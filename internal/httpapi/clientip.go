package httpapi

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientIPs finds the address a request comes from. The connection's peer
// is the client unless the peer is one of the trusted proxies: only then are
// X-Forwarded-For and X-Real-IP read, so a forged header from anyone else
// neither escapes a rate limit nor locks another client out.
type clientIPs struct {
	trusted []netip.Prefix
}

// of returns the client address of r; ok is false when even the
// connection's address cannot be parsed.
func (c clientIPs) of(r *http.Request) (netip.Addr, bool) {
	peer, ok := parseHost(r.RemoteAddr)
	if !ok || !c.isTrusted(peer) {
		return peer, ok
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		return c.fromForwardedFor(peer, strings.Join(xff, ",")), true
	}
	if xr, ok := parseHost(strings.TrimSpace(r.Header.Get("X-Real-IP"))); ok {
		return xr, true
	}
	return peer, true
}

// fromForwardedFor walks the X-Forwarded-For list from the right, where our
// own proxies append, skipping trusted hops: the first untrusted address is
// the client. Entries left of it were written by the client and are ignored.
// An unparsable entry ends the walk at the last address known good.
func (c clientIPs) fromForwardedFor(peer netip.Addr, list string) netip.Addr {
	hops := strings.Split(list, ",")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHost(strings.TrimSpace(hops[i]))
		if !ok {
			return client
		}
		client = a
		if !c.isTrusted(a) {
			return a
		}
	}
	return client
}

func (c clientIPs) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// address returns r's client address for logs, or the raw peer address
// when it cannot be parsed.
func (c clientIPs) address(r *http.Request) string {
	if a, ok := c.of(r); ok {
		return a.String()
	}
	return r.RemoteAddr
}

// key returns the rate-limit key of r's client: the IPv4 address, or the
// IPv6 /64 (one subscriber usually holds a whole /64, so keying on the full
// address would let it rotate addresses to dodge a limit).
func (c clientIPs) key(r *http.Request) string {
	a, ok := c.of(r)
	if !ok {
		return "peer:" + r.RemoteAddr
	}
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// parseHost parses "ip", "ip:port" or "[ipv6]:port", dropping any zone and
// unmapping IPv4-mapped IPv6 addresses.
func parseHost(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}
