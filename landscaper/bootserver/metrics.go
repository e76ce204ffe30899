package bootserver

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// outcome is how a request ended. Every request for a boot file ends with
// exactly one, so the counters by outcome add up to the requests.
type outcome string

const (
	// outcomeOK: the whole file or script was sent.
	outcomeOK outcome = "ok"
	// outcomeNoEntry: a machine without an entry got the script that sends
	// it on to its next boot device.
	outcomeNoEntry outcome = "no_entry"
	// outcomeLocalBoot: an installed machine got the script that sends it
	// to its disk.
	outcomeLocalBoot outcome = "local_boot"
	// outcomeSizeProbe: a UEFI firmware asked for the size (tsize) and
	// ended the transfer after the answer, as EDK2 does before every
	// download. Normal, not a failure.
	outcomeSizeProbe outcome = "size_probe"
	// outcomeNotFound: no file by that name.
	outcomeNotFound outcome = "not_found"
	// outcomeBadRequest: a name no client of ours sends (traversal, odd
	// bytes), a method other than GET and HEAD, an unsatisfiable range.
	outcomeBadRequest outcome = "bad_request"
	// outcomeBusy: refused because the maximum of transfers were running.
	outcomeBusy outcome = "busy"
	// outcomeTimeout: the transfer outlived its deadline, or the client
	// stopped answering.
	outcomeTimeout outcome = "timeout"
	// outcomeFailed: anything else that cut a transfer short.
	outcomeFailed outcome = "failed"
	// outcomeRefused: a machine's extra archive, asked for by a client it
	// is not for, or sealed (secret.go).
	outcomeRefused outcome = "refused"
)

var (
	outcomes  = []outcome{outcomeOK, outcomeNoEntry, outcomeLocalBoot, outcomeSizeProbe, outcomeNotFound, outcomeBadRequest, outcomeBusy, outcomeTimeout, outcomeFailed, outcomeRefused}
	protocols = []string{"tftp", "http"}
)

// metrics are the server's counters, kept in memory and written in the
// Prometheus text format. The maps are filled once and only read after, so
// the counters need no lock.
type metrics struct {
	requests     map[string]map[outcome]*atomic.Int64
	bytes        map[string]*atomic.Int64
	inFlight     map[string]*atomic.Int64
	maxTransfers int
	// badDatagrams counts datagrams at the TFTP port that started nothing:
	// not requests, so not in requests.
	badDatagrams atomic.Int64
	// tftpGate: the TFTP transfers waiting for their first acknowledgement
	// (limits.go); written at the end.
	tftpGate tftpGateMetrics
	// secretRefused counts refused extra archives by protocol and reason.
	secretRefused map[string]map[string]*atomic.Int64
}

func newMetrics(maxTransfers int) *metrics {
	m := &metrics{
		requests:      map[string]map[outcome]*atomic.Int64{},
		bytes:         map[string]*atomic.Int64{},
		inFlight:      map[string]*atomic.Int64{},
		maxTransfers:  maxTransfers,
		secretRefused: map[string]map[string]*atomic.Int64{},
	}
	for _, p := range protocols {
		m.secretRefused[p] = map[string]*atomic.Int64{}
		for _, r := range refusalReasons {
			m.secretRefused[p][r] = new(atomic.Int64)
		}
		m.requests[p] = map[outcome]*atomic.Int64{}
		for _, o := range outcomes {
			m.requests[p][o] = new(atomic.Int64)
		}
		m.bytes[p] = new(atomic.Int64)
		m.inFlight[p] = new(atomic.Int64)
	}
	return m
}

// count records one finished request; refusal is why an extra archive
// was refused, if it was.
func (m *metrics) count(protocol string, o outcome, bytes int64, refusal string) {
	m.requests[protocol][o].Add(1)
	m.bytes[protocol].Add(bytes)
	if c := m.secretRefused[protocol][refusal]; c != nil {
		c.Add(1)
	}
}

// write writes the counters in the Prometheus text exposition format.
func (m *metrics) write(w io.Writer) {
	fmt.Fprintln(w, "# HELP landscaper_boot_requests_total Requests for boot files by protocol and outcome; each request counts once.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_requests_total counter")
	for _, p := range protocols {
		for _, o := range outcomes {
			fmt.Fprintf(w, "landscaper_boot_requests_total{protocol=%q,outcome=%q} %d\n", p, o, m.requests[p][o].Load())
		}
	}
	fmt.Fprintln(w, "# HELP landscaper_boot_sent_bytes_total Bytes of boot files sent, by protocol.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_sent_bytes_total counter")
	for _, p := range protocols {
		fmt.Fprintf(w, "landscaper_boot_sent_bytes_total{protocol=%q} %d\n", p, m.bytes[p].Load())
	}
	fmt.Fprintln(w, "# HELP landscaper_boot_tftp_size_probes_total TFTP transfers a firmware ended after learning the size (UEFI tsize probe); also in requests_total as outcome size_probe.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_tftp_size_probes_total counter")
	fmt.Fprintf(w, "landscaper_boot_tftp_size_probes_total %d\n", m.requests["tftp"][outcomeSizeProbe].Load())
	fmt.Fprintln(w, "# HELP landscaper_boot_transfers_refused_total Transfers refused because the maximum were running; also in requests_total as outcome busy.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_transfers_refused_total counter")
	for _, p := range protocols {
		fmt.Fprintf(w, "landscaper_boot_transfers_refused_total{protocol=%q} %d\n", p, m.requests[p][outcomeBusy].Load())
	}
	fmt.Fprintln(w, "# HELP landscaper_boot_secret_refused_total Requests for a machine's extra archive (its secrets) refused, by protocol and reason: other_client (another client fetched the machine's script first: an alarm), unclaimed (no client fetched the script), sealed (the host key it carries was replaced), record_error (the fetch record in the boot directory cannot be read or written); also in requests_total as outcome refused.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_secret_refused_total counter")
	for _, p := range protocols {
		for _, r := range refusalReasons {
			fmt.Fprintf(w, "landscaper_boot_secret_refused_total{protocol=%q,reason=%q} %d\n", p, r, m.secretRefused[p][r].Load())
		}
	}
	fmt.Fprintln(w, "# HELP landscaper_boot_tftp_bad_datagrams_total Datagrams at the TFTP port that started no transfer: malformed, an unknown opcode, or DATA, ACK, ERROR or OACK outside a transfer. Not requests.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_tftp_bad_datagrams_total counter")
	fmt.Fprintf(w, "landscaper_boot_tftp_bad_datagrams_total %d\n", m.badDatagrams.Load())
	fmt.Fprintln(w, "# HELP landscaper_boot_transfers_in_flight Transfers running now, by protocol.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_transfers_in_flight gauge")
	for _, p := range protocols {
		fmt.Fprintf(w, "landscaper_boot_transfers_in_flight{protocol=%q} %d\n", p, m.inFlight[p].Load())
	}
	fmt.Fprintln(w, "# HELP landscaper_boot_transfers_max The most transfers that may run at once, over both protocols.")
	fmt.Fprintln(w, "# TYPE landscaper_boot_transfers_max gauge")
	fmt.Fprintf(w, "landscaper_boot_transfers_max %d\n", m.maxTransfers)
	m.tftpGate.write(w)
}

// serveMetrics answers GET /metrics.
func (m *metrics) serveMetrics(w http.ResponseWriter, r *http.Request, extra []func(io.Writer)) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	m.write(w)
	for _, write := range extra {
		write(w)
	}
	writeProcessMetrics(w)
}
