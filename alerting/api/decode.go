package api

import (
	"encoding/json"

	"github.com/gin-gonic/gin"
)

func newDecoder(c *gin.Context) *json.Decoder {
	d := json.NewDecoder(c.Request.Body)
	d.DisallowUnknownFields()
	return d
}
