package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// splitAddr splits host:port, the port a number from 0 to 65535.
func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, errors.New("not host:port")
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", p)
	}
	return host, port, nil
}

// reachable says whether host:port is one others can connect to: a host
// named, not every interface, and a port chosen.
func reachable(host string, port int) bool {
	return host != "" && host != "0.0.0.0" && host != "::" && port > 0
}
