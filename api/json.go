package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DefaultMaxBody bounds request bodies (413 beyond it).
const DefaultMaxBody = 64 << 10

// ErrorBody is every error response: the message and, for a bad request,
// the request field at fault.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// WriteJSON writes v with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError writes an ErrorBody.
func WriteError(w http.ResponseWriter, code int, field, msg string) {
	WriteJSON(w, code, ErrorBody{Error: msg, Field: field})
}

// RequestError is a client error with its HTTP status and the field at fault.
type RequestError struct {
	Status int
	Field  string
	Msg    string
}

func (e *RequestError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}

// BadField makes a 400 naming a request field.
func BadField(field, format string, args ...any) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// WriteRequestError writes err: a RequestError with its status, anything else
// as 500 without details (they may hold internals).
func WriteRequestError(w http.ResponseWriter, err error) {
	var re *RequestError
	if errors.As(err, &re) {
		WriteError(w, re.Status, re.Field, re.Msg)
		return
	}
	WriteError(w, http.StatusInternalServerError, "", "internal error")
}

// DecodeJSON reads a JSON object into v strictly: unknown fields, wrong types,
// trailing data and bodies over max bytes (0: DefaultMaxBody) are errors
// naming the field.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, max int64) error {
	if max <= 0 {
		max = DefaultMaxBody
	}
	body := http.MaxBytesReader(w, r.Body, max)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, max)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err, max)
		}
		return &RequestError{Status: http.StatusBadRequest, Msg: "body must hold one JSON object and nothing after it"}
	}
	return nil
}

func jsonError(err error, max int64) error {
	var (
		mbe *http.MaxBytesError
		ute *json.UnmarshalTypeError
		se  *json.SyntaxError
	)
	switch {
	case errors.As(err, &mbe):
		return &RequestError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("body is larger than %d bytes", max)}
	case errors.As(err, &ute):
		return BadField(ute.Field, "want %s, got JSON %s", ute.Type, ute.Value)
	case errors.As(err, &se):
		return &RequestError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)}
	case errors.Is(err, io.EOF):
		return &RequestError{Status: http.StatusBadRequest, Msg: "empty body: want a JSON object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &RequestError{Status: http.StatusBadRequest, Msg: "malformed JSON: the body ends early"}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return BadField(f, "unknown field")
	}
	return &RequestError{Status: http.StatusBadRequest, Msg: "malformed JSON: " + err.Error()}
}
