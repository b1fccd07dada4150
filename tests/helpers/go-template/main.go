// Renders a Go text/template as Ollama does (its TEMPLATE is a text/template over .Messages, .System and
// .Prompt): reads {"template": "...", "data": {...}} on stdin, prints the rendered text as JSON.
package main

import (
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type Data struct {
	Messages []Message `json:"messages"`
	System   string    `json:"system"`
	Prompt   string    `json:"prompt"`
}

type Input struct {
	Template string `json:"template"`
	Data     []Data `json:"data"`
}

func main() {
	var input Input
	if err := json.NewDecoder(os.Stdin).Decode(&input); err != nil {
		panic(err)
	}
	tmpl := template.Must(template.New("ollama").Parse(input.Template))
	out := []string{}
	for _, d := range input.Data {
		var b strings.Builder
		if err := tmpl.Execute(&b, d); err != nil {
			panic(err)
		}
		out = append(out, b.String())
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
