package syntax_test

import (
	"fmt"
	"log"

	"github.com/grefine/grefine/pipeline/syntax"
)

// The DESIGN example: four parts, their head nouns and their ancestors.
func ExampleParser_Parse() {
	p, err := syntax.New(syntax.Options{})
	if err != nil {
		log.Fatal(err)
	}
	r, err := p.Parse("Mr. Beans wearing sun glasses with blue doctor suit and stripe tie")
	if err != nil {
		log.Fatal(err)
	}
	for i, part := range r.Parts {
		fmt.Printf("%d %q noun=%q tokens [%d,%d) ancestor=%d\n",
			i, part.Text, part.Noun, part.Start, part.End, part.Ancestor)
	}
	// Output:
	// 0 "Mr. Beans wearing" noun="Beans" tokens [0,3) ancestor=-1
	// 1 "sun glasses" noun="glasses" tokens [3,6) ancestor=0
	// 2 "blue doctor suit" noun="suit" tokens [6,10) ancestor=0
	// 3 "stripe tie" noun="tie" tokens [10,12) ancestor=2
}

// The contract JSON printed by `grefine parse PROMPT --json`.
func ExampleResult_JSON() {
	p, err := syntax.New(syntax.Options{})
	if err != nil {
		log.Fatal(err)
	}
	r, err := p.Parse("a photo of a cat on a mat")
	if err != nil {
		log.Fatal(err)
	}
	js, err := r.JSON()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(js))
	// Output:
	// {"parts":[{"text":"photo","noun":"photo","start":0,"end":3,"ancestor":-1},{"text":"cat","noun":"cat","start":3,"end":6,"ancestor":0},{"text":"mat","noun":"mat","start":6,"end":8,"ancestor":1}]}
}

// Emphasis syntax is stripped; each token keeps the user's weight and its byte
// offsets in the original prompt.
func ExampleToken() {
	p, err := syntax.New(syntax.Options{})
	if err != nil {
		log.Fatal(err)
	}
	prompt := "((masterpiece)), (red hat:1.3) on a [cat]"
	r, err := p.Parse(prompt)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range r.Tokens {
		fmt.Printf("%-12s %-4s %.3f %q\n", t.Text, t.Tag, t.Weight, prompt[t.Start:t.End])
	}
	fmt.Println(r.PartTexts())
	// Output:
	// masterpiece  NN   1.210 "masterpiece"
	// ,            ,    1.000 ","
	// red          JJ   1.300 "red"
	// hat          NN   1.300 "hat"
	// on           IN   1.000 "on"
	// a            DT   1.000 "a"
	// cat          NN   0.909 "cat"
	// [masterpiece red hat cat]
}

// Prompts without a word give no parts; an empty prompt is an error.
func ExampleParser_Parse_edgeCases() {
	p, err := syntax.New(syntax.Options{})
	if err != nil {
		log.Fatal(err)
	}
	r, _ := p.Parse(", , ,")
	js, _ := r.JSON()
	fmt.Println(string(js))
	r, _ = p.Parse("very beautiful")
	js, _ = r.JSON()
	fmt.Println(string(js))
	_, err = p.Parse("   ")
	fmt.Println(err)
	// Output:
	// {"parts":[]}
	// {"parts":[{"text":"beautiful","noun":"","start":0,"end":2,"ancestor":-1}]}
	// syntax: empty prompt
}
