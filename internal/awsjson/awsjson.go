// Package awsjson answers HTTP requests the way services of the AWS JSON
// protocols (1.0 and 1.1) do, for the protocol fakes: one place for the
// response and error shapes the SDK's deserializers read.
package awsjson

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
)

// Content types of the two protocol versions.
const (
	JSON10 = "application/x-amz-json-1.0"
	JSON11 = "application/x-amz-json-1.1"
)

// Write answers with v as the JSON body, a request id and status.
func Write(w http.ResponseWriter, contentType string, status int, v any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-RequestId", rand.Text())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers an error as the services do: the code in
// X-Amzn-ErrorType and in the body's __type (which may carry the
// service's namespace, "com.amazonaws...#Code"), with a message.
func WriteError(w http.ResponseWriter, contentType string, status int, code, msg string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	Write(w, contentType, status, map[string]string{"__type": code, "message": msg})
}
