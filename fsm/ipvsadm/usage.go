package ipvsadm

import "strings"

// Usage is the -h text: ipvsadm's synopsis, limited to what ipvsman does.
func Usage(program string) string {
	return strings.ReplaceAll(`Usage:
  $0 -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe sip] [-b sched-flags] [-o]
  $0 -D virtual-service
  $0 -C
  $0 -R
  $0 -S [-n]
  $0 -a|e virtual-service -r server-address [-g|-i|-m] [-w weight] [-x upper] [-y lower]
        [--tun-type ipip|gue|gre] [--tun-port port] [--tun-nocsum|--tun-csum|--tun-remcsum]
  $0 -d virtual-service -r server-address
  $0 -L|l [virtual-service] [-n] [--stats|--rate|--thresholds|--persistent-conn|--tun-info] [--exact]
  $0 -L --timeout
  $0 -Z [virtual-service]
  $0 --set tcp tcpfin udp
  $0 -h|-v

Commands:
  --add-service     -A   add a virtual service
  --edit-service    -E   replace a virtual service's settings
  --delete-service  -D   delete a virtual service
  --clear           -C   delete every virtual service
  --restore         -R   read commands, as -S writes them, from standard input
  --save            -S   write the table as commands to standard output
  --add-server      -a   add a real server
  --edit-server     -e   replace a real server's settings
  --delete-server   -d   delete a real server
  --list            -L|-l  list the table
  --zero            -Z   zero the counters of one or every service
  --set tcp tcpfin udp   the kernel's connection timeouts in seconds (0: unchanged)
  --help            -h   show this text
  --version         -v   show the version

virtual-service:
  --tcp-service|-t address:port     e.g. 10.0.0.1:80 or [2001:db8::1]:80
  --udp-service|-u address:port
  --sctp-service address:port
  --fwmark-service|-f mark          with --ipv6|-6 for an IPv6 fwmark service

Options:
  --scheduler    -s name      any the kernel has: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh,
                              twos from Linux 6.7 (default wlc)
  --persistent   -p [secs]    persistent service (default 300 seconds)
  --netmask      -M mask      persistence granularity (IPv4 netmask or IPv6 prefix length)
  --pe           engine       with -p: persistence engine sip (UDP, fwmark)
  --sched-flags  -b flags     comma list: sh-fallback sh-port mh-fallback mh-port flag-1..3
  --ops          -o           one-packet scheduling
  --real-server  -r address[:port]  the real server (default port: the service's);
                              127.0.0.1 or ::1 with -g: the director itself (Local)
  --gatewaying   -g           direct routing (default)
  --ipip         -i           tunnelling (ipip unless --tun-type)
  --masquerading -m           masquerading (NAT)
  --tun-type     type         with -i: ipip (default), gue or gre encapsulation
  --tun-port     port         with --tun-type gue: the tunnel's UDP port (required)
  --tun-nocsum                with gue or gre: no tunnel checksum (default)
  --tun-csum                  with gue or gre: tunnel checksum
  --tun-remcsum               with gue: remote checksum offload
  --weight       -w weight    0-65535 (default 1)
  --u-threshold  -x upper     upper connection threshold (0 = none)
  --l-threshold  -y lower     lower connection threshold
  --numeric      -n           print addresses and ports as numbers
  --connection   -c           list connections
  --stats --rate --thresholds --persistent-conn --tun-info --exact   listing variants
  --timeout                   with -L: the connection timeouts
`, "$0", program)
}
