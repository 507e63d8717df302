package ipvsnl

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/test/skip"
)

// headerValues reads the enums and plain #defines of a uapi header: enum
// members count up from the previous value (or an explicit "= N"), as C
// numbers them.
func headerValues(t *testing.T, path string) map[string]int {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		skip.Nowf(t, "no kernel header to check against: %v", err)
	}
	text := regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(string(src), "")
	vals := map[string]int{}
	def := regexp.MustCompile(`(?m)^#define\s+(\w+)\s+\(?\s*(0x[0-9a-fA-F]+|\d+)\s*\)?\s*$`)
	for _, m := range def.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseInt(m[2], 0, 64)
		vals[m[1]] = int(v)
	}
	shift := regexp.MustCompile(`(?m)^#define\s+(\w+)\s+\(\s*1\s*<<\s*(\d+)\s*\)`)
	for _, m := range shift.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[2])
		vals[m[1]] = 1 << n
	}
	for _, body := range regexp.MustCompile(`(?s)enum\s*\{(.*?)\}`).FindAllStringSubmatch(text, -1) {
		next := 0
		for _, item := range strings.Split(body[1], ",") {
			name, val, explicit := strings.Cut(strings.TrimSpace(item), "=")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if explicit {
				v, err := strconv.ParseInt(strings.TrimSpace(val), 0, 64)
				if err != nil {
					t.Fatalf("%s = %q: %v", name, val, err)
				}
				next = int(v)
			}
			vals[name] = next
			next++
		}
	}
	return vals
}

// TestNumbersMatchKernelHeader checks every number this package sends
// against include/uapi/linux/ip_vs.h as installed (linux-libc-dev).
func TestNumbersMatchKernelHeader(t *testing.T) {
	h := headerValues(t, "/usr/include/linux/ip_vs.h")
	for name, ours := range map[string]int{
		"IPVS_GENL_VERSION":    familyVersion,
		"IPVS_CMD_NEW_SERVICE": cmdNewService, "IPVS_CMD_SET_SERVICE": cmdSetService,
		"IPVS_CMD_DEL_SERVICE": cmdDelService, "IPVS_CMD_GET_SERVICE": cmdGetService,
		"IPVS_CMD_NEW_DEST": cmdNewDest, "IPVS_CMD_SET_DEST": cmdSetDest,
		"IPVS_CMD_DEL_DEST": cmdDelDest, "IPVS_CMD_GET_DEST": cmdGetDest,
		"IPVS_CMD_NEW_DAEMON": cmdNewDaemon, "IPVS_CMD_DEL_DAEMON": cmdDelDaemon,
		"IPVS_CMD_GET_DAEMON": cmdGetDaemon, "IPVS_CMD_SET_CONFIG": cmdSetConfig,
		"IPVS_CMD_GET_CONFIG": cmdGetConfig,

		"IPVS_CMD_ATTR_SERVICE": cmdAttrService, "IPVS_CMD_ATTR_DEST": cmdAttrDest,
		"IPVS_CMD_ATTR_DAEMON": cmdAttrDaemon, "IPVS_CMD_ATTR_TIMEOUT_TCP": cmdAttrTimeoutTCP,
		"IPVS_CMD_ATTR_TIMEOUT_TCP_FIN": cmdAttrTimeoutTCPFin, "IPVS_CMD_ATTR_TIMEOUT_UDP": cmdAttrTimeoutUDP,

		"IPVS_SVC_ATTR_AF": svcAttrAF, "IPVS_SVC_ATTR_PROTOCOL": svcAttrProtocol,
		"IPVS_SVC_ATTR_ADDR": svcAttrAddr, "IPVS_SVC_ATTR_PORT": svcAttrPort,
		"IPVS_SVC_ATTR_FWMARK": svcAttrFWMark, "IPVS_SVC_ATTR_SCHED_NAME": svcAttrSchedName,
		"IPVS_SVC_ATTR_FLAGS": svcAttrFlags, "IPVS_SVC_ATTR_TIMEOUT": svcAttrTimeout,
		"IPVS_SVC_ATTR_NETMASK": svcAttrNetmask, "IPVS_SVC_ATTR_STATS": svcAttrStats,
		"IPVS_SVC_ATTR_PE_NAME": svcAttrPEName, "IPVS_SVC_ATTR_STATS64": svcAttrStats64,

		"IPVS_DEST_ATTR_ADDR": destAttrAddr, "IPVS_DEST_ATTR_PORT": destAttrPort,
		"IPVS_DEST_ATTR_FWD_METHOD": destAttrFwdMethod, "IPVS_DEST_ATTR_WEIGHT": destAttrWeight,
		"IPVS_DEST_ATTR_U_THRESH": destAttrUThresh, "IPVS_DEST_ATTR_L_THRESH": destAttrLThresh,
		"IPVS_DEST_ATTR_ACTIVE_CONNS": destAttrActiveConns, "IPVS_DEST_ATTR_INACT_CONNS": destAttrInactConns,
		"IPVS_DEST_ATTR_PERSIST_CONNS": destAttrPersistConns, "IPVS_DEST_ATTR_STATS": destAttrStats,
		"IPVS_DEST_ATTR_ADDR_FAMILY": destAttrAddrFamily, "IPVS_DEST_ATTR_STATS64": destAttrStats64,
		"IPVS_DEST_ATTR_TUN_TYPE": destAttrTunType, "IPVS_DEST_ATTR_TUN_PORT": destAttrTunPort,
		"IPVS_DEST_ATTR_TUN_FLAGS": destAttrTunFlags,

		"IPVS_DAEMON_ATTR_STATE": daemonAttrState, "IPVS_DAEMON_ATTR_MCAST_IFN": daemonAttrMcastIfn,
		"IPVS_DAEMON_ATTR_SYNC_ID": daemonAttrSyncID, "IPVS_DAEMON_ATTR_SYNC_MAXLEN": daemonAttrSyncMaxLen,
		"IPVS_DAEMON_ATTR_MCAST_GROUP": daemonAttrMcastGroup, "IPVS_DAEMON_ATTR_MCAST_GROUP6": daemonAttrMcastGroup6,
		"IPVS_DAEMON_ATTR_MCAST_PORT": daemonAttrMcastPort, "IPVS_DAEMON_ATTR_MCAST_TTL": daemonAttrMcastTTL,

		"IPVS_STATS_ATTR_OUTBPS": statsAttrMax, "IPVS_STATS_ATTR_PAD": statsAttrMax + 1,
		"IP_VS_IFNAME_MAXLEN": ifNameMax + 1,

		"IP_VS_SVC_F_PERSISTENT": FlagPersistent, "IP_VS_SVC_F_HASHED": FlagHashed,
		"IP_VS_SVC_F_ONEPACKET": FlagOnePacket, "IP_VS_SVC_F_SCHED1": FlagSched1,
		"IP_VS_SVC_F_SCHED2": FlagSched2, "IP_VS_SVC_F_SCHED3": FlagSched3,
		"IP_VS_CONN_F_MASQ": FwdMasq, "IP_VS_CONN_F_LOCALNODE": FwdLocalNode,
		"IP_VS_CONN_F_TUNNEL": FwdTunnel, "IP_VS_CONN_F_DROUTE": FwdDirectRoute,
		"IP_VS_CONN_F_FWD_MASK":         FwdMask,
		"IP_VS_CONN_F_TUNNEL_TYPE_IPIP": TunIPIP, "IP_VS_CONN_F_TUNNEL_TYPE_GUE": TunGUE,
		"IP_VS_CONN_F_TUNNEL_TYPE_GRE":   TunGRE,
		"IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM": TunFlagNoCsum, "IP_VS_TUNNEL_ENCAP_FLAG_CSUM": TunFlagCsum,
		"IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM": TunFlagRemCsum,
		"IP_VS_STATE_MASTER":              DaemonMaster, "IP_VS_STATE_BACKUP": DaemonBackup,
	} {
		v, ok := h[name]
		if !ok {
			t.Errorf("%s: not found in the header", name)
			continue
		}
		if v != ours {
			t.Errorf("%s = %d in the header, %d here", name, v, ours)
		}
	}
}
