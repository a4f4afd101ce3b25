package tokenizer_test

import (
	"fmt"
	"log"

	"github.com/grefine/grefine/pipeline/tokenizer"
)

func Example() {
	tok, err := tokenizer.Load("testdata/bpe_simple_vocab_16e6.txt.gz")
	if err != nil {
		log.Fatal(err)
	}
	ids, info, err := tok.Encode("A photo of a CAT")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ids[:info.NumTokens], info.Truncated)
	text, err := tok.Decode(ids[1 : info.NumTokens-1])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", text)
	// Output:
	// [49406 320 1125 539 320 2368 49407] false
	// "a photo of a cat "
}

func ExampleTokenizer_Tokens() {
	tok, err := tokenizer.Load("testdata/bpe_simple_vocab_16e6.txt.gz")
	if err != nil {
		log.Fatal(err)
	}
	clean, toks, err := tok.Tokens("(Best Quality:1.2)")
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range toks {
		fmt.Printf("word %d %q\n", t.Word, clean[t.Start:t.End])
	}
	// Output:
	// word 0 "("
	// word 1 "best"
	// word 2 "quality"
	// word 3 ":"
	// word 4 "1"
	// word 5 "."
	// word 6 "2"
	// word 7 ")"
}
