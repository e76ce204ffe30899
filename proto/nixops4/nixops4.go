// Package nixops4 is NixOps4's resource provider protocol, version 0: the
// messages of rust/nixops4-resource/resource-schema-v0.json in
// nixops4/nixops4 (schematest/testdata/README.md names the commit) and their framing,
// JSON lines over a provider's stdin and stdout. Each request line is
// answered by one response line; a provider logs on stderr and exits when
// its stdin ends.
//
// Version 0 has create, update and, for state providers, state read and
// state event. It has no delete, no plan, no read and no sensitive values.
package nixops4

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// CreateResourceRequest asks a provider for a new resource.
type CreateResourceRequest struct {
	// Type is the provider's own name for the type ("file").
	Type string `json:"type"`
	// InputProperties is a JSON object.
	InputProperties json.RawMessage `json:"inputProperties"`
	// IsStateful says the engine persists the response; a type that needs
	// that must refuse a request without it.
	IsStateful bool `json:"isStateful"`
}

// CreateResourceResponse carries a created resource's outputs.
type CreateResourceResponse struct {
	OutputProperties json.RawMessage `json:"outputProperties"`
}

// ExtantResource is a resource as the engine recorded it.
type ExtantResource struct {
	Type            string          `json:"type"`
	InputProperties json.RawMessage `json:"inputProperties"`
	// OutputProperties may be absent.
	OutputProperties json.RawMessage `json:"outputProperties,omitempty"`
}

// UpdateResourceRequest asks for a stateful resource to take new inputs.
type UpdateResourceRequest struct {
	Resource        ExtantResource  `json:"resource"`
	InputProperties json.RawMessage `json:"inputProperties"`
}

// UpdateResourceResponse carries an updated resource's outputs.
type UpdateResourceResponse struct {
	OutputProperties json.RawMessage `json:"outputProperties"`
}

// StateResourceReadRequest asks a state provider resource for the state it
// stores.
type StateResourceReadRequest struct {
	Resource ExtantResource `json:"resource"`
}

// StateResourceReadResponse is the state a state provider stores.
type StateResourceReadResponse struct {
	State json.RawMessage `json:"state"`
}

// StateResourceEvent asks a state provider resource to record a change
// (a JSON Patch over the whole state).
type StateResourceEvent struct {
	Resource      ExtantResource  `json:"resource"`
	Event         string          `json:"event"`
	NixopsVersion string          `json:"nixopsVersion"`
	Patch         json.RawMessage `json:"patch"`
}

// StateResourceEventResponse acknowledges a state event.
type StateResourceEventResponse struct{}

// ErrorResponse says a request failed.
type ErrorResponse struct {
	Message string `json:"message"`
}

// Request is one request line: exactly one of its fields is set.
type Request struct {
	CreateResourceRequest    *CreateResourceRequest    `json:"createResourceRequest,omitempty"`
	UpdateResourceRequest    *UpdateResourceRequest    `json:"updateResourceRequest,omitempty"`
	StateResourceEvent       *StateResourceEvent       `json:"stateResourceEvent,omitempty"`
	StateResourceReadRequest *StateResourceReadRequest `json:"stateResourceReadRequest,omitempty"`
}

// Response is one response line: exactly one of its fields is set.
type Response struct {
	CreateResourceResponse     *CreateResourceResponse     `json:"createResourceResponse,omitempty"`
	UpdateResourceResponse     *UpdateResourceResponse     `json:"updateResourceResponse,omitempty"`
	StateResourceEventResponse *StateResourceEventResponse `json:"stateResourceEventResponse,omitempty"`
	StateResourceReadResponse  *StateResourceReadResponse  `json:"stateResourceReadResponse,omitempty"`
	ErrorResponse              *ErrorResponse              `json:"errorResponse,omitempty"`
}

// Errorf returns an error response.
func Errorf(format string, args ...any) *Response {
	return &Response{ErrorResponse: &ErrorResponse{Message: fmt.Sprintf(format, args...)}}
}

// Kind names the message a request carries ("createResourceRequest").
func (r *Request) Kind() string { return kind(r) }

// Kind names the message a response carries ("errorResponse").
func (r *Response) Kind() string { return kind(r) }

func kind(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || len(m) != 1 {
		return ""
	}
	for k := range m {
		return k
	}
	return ""
}

// MaxLine bounds one message, so that a peer that never ends its line
// cannot exhaust memory.
const MaxLine = 64 << 20

// Reader reads messages, one per line.
type Reader struct {
	r *bufio.Reader
}

// NewReader reads messages from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 64<<10)} }

// ReadRequest reads the next request. It returns io.EOF when the input
// ends between messages.
func (r *Reader) ReadRequest() (*Request, error) {
	var req Request
	if err := r.read(&req); err != nil {
		return nil, err
	}
	if req.Kind() == "" {
		return nil, errors.New("a request must hold exactly one of createResourceRequest, updateResourceRequest, stateResourceEvent, stateResourceReadRequest")
	}
	return &req, nil
}

// ReadResponse reads the next response. It returns io.EOF when the input
// ends between messages.
func (r *Reader) ReadResponse() (*Response, error) {
	var resp Response
	if err := r.read(&resp); err != nil {
		return nil, err
	}
	if resp.Kind() == "" {
		return nil, errors.New("a response must hold exactly one of createResourceResponse, updateResourceResponse, stateResourceEventResponse, stateResourceReadResponse, errorResponse")
	}
	return &resp, nil
}

// LineError is a message line that could not be decoded; the readers return it
// so that a caller can answer it and read on.
type LineError struct {
	Err error
}

func (e *LineError) Error() string { return "bad message: " + e.Err.Error() }
func (e *LineError) Unwrap() error { return e.Err }

func (r *Reader) read(v any) error {
	line, err := r.line()
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &LineError{Err: err}
	}
	if dec.More() {
		return &LineError{Err: errors.New("more than one JSON value on the line")}
	}
	return nil
}

func (r *Reader) line() ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxLine {
			return nil, fmt.Errorf("a message longer than %d bytes", MaxLine)
		}
		switch {
		case err == nil:
			if len(bytes.TrimSpace(line)) == 0 {
				line = line[:0]
				continue
			}
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(bytes.TrimSpace(line)) == 0:
			return nil, io.EOF
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("the input ended within a message: %w", io.ErrUnexpectedEOF)
		default:
			return nil, err
		}
	}
}

// Write writes one message (a *Request or a *Response) as one line.
func Write(w io.Writer, msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	// json.Marshal never writes a line break: strings escape it.
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	return nil
}
