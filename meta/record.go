package meta

// Header carries a record's schema version, the "v" field of its JSON.
// Every record type embeds it; the Store fills it in on write and checks it
// on read.
type Header struct {
	V int `json:"v"`
}

func (h *Header) header() *Header { return h }

// record is implemented by pointers to every record type (through the
// embedded Header).
type record interface {
	header() *Header
}
