package conn

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// TagsNamespace is the XML namespace of NovaCron's tags in a domain's
// <metadata>:
//
//	<metadata>
//	  <novacron:tags xmlns:novacron="https://novacron.io/xmlns/libvirt/1">
//	    <novacron:tag name="tenant" value="acme"/>
//	  </novacron:tags>
//	</metadata>
const TagsNamespace = "https://novacron.io/xmlns/libvirt/1"

// maxTags bounds the tags read from one domain's metadata.
const maxTags = 64

// ParseTags reads NovaCron's tags from the inner XML of a domain's
// <metadata>: every <tag name="..." value="..."/> in TagsNamespace, at any
// depth. Other namespaces' metadata are ignored. Names and values are
// trimmed; empty names are skipped; the last of duplicate names wins.
func ParseTags(inner string) (map[string]string, error) {
	dec := xml.NewDecoder(strings.NewReader(inner))
	var tags map[string]string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return tags, nil
		}
		if err != nil {
			return tags, fmt.Errorf("parse domain metadata: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Space != TagsNamespace || se.Name.Local != "tag" {
			continue
		}
		var name, value string
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "name":
				name = strings.TrimSpace(a.Value)
			case "value":
				value = strings.TrimSpace(a.Value)
			}
		}
		if name == "" {
			continue
		}
		if tags == nil {
			tags = map[string]string{}
		}
		if _, seen := tags[name]; !seen && len(tags) >= maxTags {
			continue
		}
		tags[name] = value
	}
}

// TagsXML renders tags as the <metadata> child that the collector reads
// (see TagsNamespace), in name order, for tools that define domains.
func TagsXML(tags map[string]string) string {
	var b strings.Builder
	b.WriteString(`<novacron:tags xmlns:novacron="` + TagsNamespace + `">`)
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		b.WriteString(`<novacron:tag name="`)
		_ = xml.EscapeText(&b, []byte(k))
		b.WriteString(`" value="`)
		_ = xml.EscapeText(&b, []byte(tags[k]))
		b.WriteString(`"/>`)
	}
	b.WriteString(`</novacron:tags>`)
	return b.String()
}
