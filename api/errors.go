package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/novacron/novacron"
)

// codeStatus maps domain error codes to HTTP statuses, in one table.
var codeStatus = map[string]int{
	novacron.EINVALID:      http.StatusBadRequest,
	novacron.ENOTFOUND:     http.StatusNotFound,
	novacron.ECONFLICT:     http.StatusConflict,
	novacron.EUNAUTHORIZED: http.StatusUnauthorized,
	novacron.EUNSUPPORTED:  http.StatusNotImplemented,
	novacron.EUNAVAILABLE:  http.StatusServiceUnavailable,
	novacron.EINTERNAL:     http.StatusInternalServerError,
}

// ErrorBody is the JSON body of every API error.
type ErrorBody struct {
	// Error is a message meant for people; "internal error" hides details.
	Error string `json:"error"`
	// Code is the domain error code (invalid, not_found, ...).
	Code string `json:"code"`
}

func (s *Server) fail(c *gin.Context, err error) {
	code := novacron.ErrorCode(err)
	status, ok := codeStatus[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if code == novacron.EINTERNAL {
		s.logger.Error("API request failed", "method", c.Request.Method, "path", c.FullPath(), "err", err)
	}
	c.AbortWithStatusJSON(status, ErrorBody{Error: novacron.ErrorMessage(err), Code: code})
}
