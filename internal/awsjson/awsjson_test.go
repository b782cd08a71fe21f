package awsjson

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		contentType, code string
		status            int
	}{
		{JSON10, "com.amazonaws.dynamodb.v20120810#ExpiredIteratorException", http.StatusBadRequest},
		{JSON11, "ThrottlingException", http.StatusBadRequest},
		{JSON11, "InternalFailure", http.StatusInternalServerError},
	} {
		rec := httptest.NewRecorder()
		WriteError(rec, tc.contentType, tc.status, tc.code, "what happened")
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		h := rec.Header()
		if rec.Code != tc.status || h.Get("Content-Type") != tc.contentType || h.Get("X-Amzn-ErrorType") != tc.code ||
			h.Get("X-Amzn-RequestId") == "" || body["__type"] != tc.code || body["message"] != "what happened" {
			t.Errorf("%s: status %d, headers %v, body %v", tc.code, rec.Code, h, body)
		}
	}
}
