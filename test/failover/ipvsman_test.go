package failover

import (
	"maps"
	"testing"
)

func TestParseRoles(t *testing.T) {
	out := `NODE  ROLE         TERM  APPLIED  COMMIT  VERSION  SERVICES  REAL SERVERS  IPVS  KERNEL TABLE  RAFT ADDRESS    API ADDRESS
d1    Follower     3     12       12      2        0         0             off   -             10.0.0.11:7000  10.0.0.11:7080
d2    Leader       3     12       12      2        0         0             off   -             10.0.0.12:7000  10.0.0.12:7080
d3    unreachable  -     -        -       -        -         -             -     -             -               10.0.0.13:7080

MEMBER  SUFFRAGE  VERSION  PROTOCOL  GOSSIP  LAST CONTACT  RAFT ADDRESS    GOSSIP ADDRESS
d1      nonvoter  0.8.0    1         alive   3ms ago       10.0.0.11:7000  10.0.0.11:7946
d2      voter     0.8.0    1         alive   leader        10.0.0.12:7000  10.0.0.12:7946
d3      voter     0.8.0    1         dead 2s -             10.0.0.13:7000  10.0.0.13:7946
cluster protocol: 1
`
	roles, err := parseRoles(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"d1": "nonvoter", "d2": "Leader", "d3": "unreachable"}; !maps.Equal(roles, want) {
		t.Fatalf("got %v, want %v", roles, want)
	}
	if _, err := parseRoles("Error: connection refused\n"); err == nil {
		t.Fatal("no error for output without the header")
	}
}
