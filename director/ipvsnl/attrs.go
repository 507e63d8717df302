package ipvsnl

// Commands and attributes, numbered as in include/uapi/linux/ip_vs.h (each
// enum counts from its UNSPEC = 0).
const (
	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdGetService = 4
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7
	cmdGetDest    = 8
	cmdNewDaemon  = 9
	cmdDelDaemon  = 10
	cmdGetDaemon  = 11
	cmdSetConfig  = 12
	cmdGetConfig  = 13

	// IPVS_CMD_ATTR_*: the top level of every message.
	cmdAttrService       = 1
	cmdAttrDest          = 2
	cmdAttrDaemon        = 3
	cmdAttrTimeoutTCP    = 4
	cmdAttrTimeoutTCPFin = 5
	cmdAttrTimeoutUDP    = 6

	// IPVS_SVC_ATTR_*, nested in cmdAttrService.
	svcAttrAF        = 1  // u16
	svcAttrProtocol  = 2  // u16
	svcAttrAddr      = 3  // union nf_inet_addr, 16 bytes
	svcAttrPort      = 4  // __be16
	svcAttrFWMark    = 5  // u32
	svcAttrSchedName = 6  // NUL-terminated string
	svcAttrFlags     = 7  // struct ip_vs_flags {u32 flags; u32 mask}
	svcAttrTimeout   = 8  // u32 seconds
	svcAttrNetmask   = 9  // __be32 (IPv4 mask) / u32 (IPv6 prefix length)
	svcAttrStats     = 10 // nested, 32-bit counters
	svcAttrPEName    = 11 // NUL-terminated string
	svcAttrStats64   = 12 // nested, 64-bit counters

	// IPVS_DEST_ATTR_*, nested in cmdAttrDest.
	destAttrAddr         = 1  // union nf_inet_addr, 16 bytes
	destAttrPort         = 2  // __be16
	destAttrFwdMethod    = 3  // u32
	destAttrWeight       = 4  // u32
	destAttrUThresh      = 5  // u32
	destAttrLThresh      = 6  // u32
	destAttrActiveConns  = 7  // u32
	destAttrInactConns   = 8  // u32
	destAttrPersistConns = 9  // u32
	destAttrStats        = 10 // nested, 32-bit counters
	destAttrAddrFamily   = 11 // u16
	destAttrStats64      = 12 // nested, 64-bit counters
	destAttrTunType      = 13 // u8
	destAttrTunPort      = 14 // __be16
	destAttrTunFlags     = 15 // u16

	// IPVS_DAEMON_ATTR_*, nested in cmdAttrDaemon.
	daemonAttrState       = 1 // u32
	daemonAttrMcastIfn    = 2 // NUL-terminated string, at most 15 bytes
	daemonAttrSyncID      = 3 // u32
	daemonAttrSyncMaxLen  = 4 // u16
	daemonAttrMcastGroup  = 5 // in_addr (__be32)
	daemonAttrMcastGroup6 = 6 // in6_addr
	daemonAttrMcastPort   = 7 // u16, host order (the kernel htons()es it itself)
	daemonAttrMcastTTL    = 8 // u8

	// IPVS_STATS_ATTR_CONNS (1) to OUTBPS (10) map to Stats in field order;
	// PAD (11) is alignment filler from nla_put_u64_64bit.
	statsAttrMax = 10

	ifNameMax = 15 // IP_VS_IFNAME_MAXLEN - 1, the policy's NLA_NUL_STRING limit
)
