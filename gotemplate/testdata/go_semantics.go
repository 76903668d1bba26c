// Prints the expected outputs used by go_semantics_tests.rs: each case's
// template executed by Go's text/template over the same JSON data (decoded into
// interface{}, so numbers are float64 as in helm). Regenerate with
//
//	go run agent/src/render/template/testdata/go_semantics.go
//
// and paste the printed Rust table into go_semantics_tests.rs.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
)

const data = `{"f": 1000000, "half": 0.5, "i": 3, "s": "str", "empty": "", "nilval": null,
 "m": {"b": 2, "a": 1, "c": {"z": [1, "x", {"k": true}]}},
 "list": [1, "a", {"x": 1.5}], "t": true}`

var cases = [][2]string{
	{"trim_both", "a  {{- 1 -}}  b"},
	{"trim_comment", "x {{- /* c */ -}} y"},
	{"trim_newlines", "x\n  {{- if true }}\ny\n{{- end }}\nz"},
	{"missing_key", "[{{ .missing }}]"},
	{"missing_nested", "[{{ .m.missing }}]"},
	{"nil_value", "[{{ .nilval }}]"},
	{"if_missing", "{{ if .missing }}yes{{ else }}no{{ end }}"},
	{"empty_string_false", "{{ if .empty }}yes{{ else }}no{{ end }}"},
	{"int_constants", "{{ 3 }} {{ 3.0 }} {{ 1e6 }} {{ 0x10 }} {{ 1.5e-7 }}"},
	{"float_values", "{{ .f }} {{ .half }} {{ .i }}"},
	{"printf_numbers", `{{ printf "%v %d %.2f %g %s" .f 3 .half .f .i }}`},
	{"printf_types", `{{ printf "%T %T %T %T %T" 1 1.5 .f .m .list }}`},
	{"map_order", "{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}"},
	{"map_print", "{{ .m }}"},
	{"printf_nested", `{{ printf "%v" .m }}|{{ printf "%+v" .list }}`},
	{"list_print", "{{ .list }}"},
	{"and_or", `{{ and 1 0 }} {{ and 1 "x" }} {{ or 0 "" "x" }} {{ or 0 "" }} {{ not .empty }}`},
	{"eq_ne_lt", `{{ eq 1 1 }} {{ eq "a" "a" "b" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2.5 2.5 }} {{ eq .i 3.0 }}`},
	{"index_slice_len", `{{ index .list 1 }} {{ index .m "a" }} {{ slice "hello" 1 3 }} {{ len .list }} {{ len .m }} {{ len "héllo" }}`},
	{"variables", "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"},
	{"range_else", "{{ range .nolist }}x{{ else }}empty{{ end }}"},
	{"range_index", "{{ range $i, $v := .list }}{{ $i }}:{{ $v }} {{ end }}"},
	{"break_continue", "{{ range $i, $v := .list }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if eq $i 2 }}{{ break }}{{ end }}{{ $v }}{{ end }}"},
	{"with_else", "{{ with .missing }}a{{ else with .s }}{{ . }}{{ end }}"},
	{"print_spacing", `{{ print 1 2 "a" "b" 3 }}|{{ println "x" 1 }}|{{ print .nilval }}`},
	{"escapers", `{{ html "<a href='x'>&</a>" }} {{ js "a'b\"c<" }} {{ urlquery "a b&c" }}`},
	{"pipeline_chain", `{{ "x" | printf "%s-%s" "y" }}`},
	{"bool_print", "{{ .t }} {{ true }} {{ not .t }}"},
	{"define_template", `{{ define "T" }}<{{ . }}>{{ end }}{{ template "T" .s }}{{ template "T" }}`},
	{"call_error_missing_map_field_on_nil", "{{ .nilval.x }}"},
	{"range_over_int", "{{ range 3 }}{{ . }}{{ end }}"},
	{"printf_bad_verb", `{{ printf "%d" "s" }}|{{ printf "%s" }}|{{ printf "%z" 1 }}`},
	{"float_formatting", `{{ 0.000001 }} {{ 123456789.0 }} {{ 1e21 }} {{ 100000000000000000000.0 }}`},
	{"printf_format_constant", `{{ printf 3 }}`},
	{"printf_format_nil", `{{ printf nil }}`},
	{"printf_format_value", `{{ printf .i }}`},
	{"printf_format_piped", `{{ .i | printf }}`},
	{"printf_format_from_a_pipeline", `{{ printf (len .list) }}`},
	{"printf_format_checked_before_later_args", `{{ printf .i .nosuch.field }}`},
}

func main() {
	var d interface{}
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		panic(err)
	}
	for _, c := range cases {
		t, err := template.New(c[0]).Parse(c[1])
		var out string
		if err != nil {
			out = "PARSE ERROR: " + err.Error()
		} else {
			var b bytes.Buffer
			if err := t.Execute(&b, d); err != nil {
				out = "EXEC ERROR: " + err.Error()
			} else {
				out = b.String()
			}
		}
		fmt.Printf("    (%q, %s, %s),\n", c[0], rustRaw(c[1]), rustRaw(out))
	}
}

func rustRaw(s string) string {
	hashes := "#"
	for strings.Contains(s, "\""+hashes) {
		hashes += "#"
	}
	return "r" + hashes + "\"" + s + "\"" + hashes
}
