package syntax

import (
	"testing"
)

// BenchmarkParse parses every corpus prompt once per iteration and reports
// prompts/s.
func BenchmarkParse(b *testing.B) {
	p := testParser(b)
	cases := loadCorpus(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, c := range cases {
			if _, err := p.Parse(c.Prompt); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(cases))/b.Elapsed().Seconds(), "prompts/s")
	b.ReportMetric(0, "ns/op") // per-iteration time is over the whole corpus: not useful
}

// BenchmarkParseLong parses one 500-word prompt.
func BenchmarkParseLong(b *testing.B) {
	p := testParser(b)
	s := longPrompt(b, 500)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNew measures loading the tagger model.
func BenchmarkNew(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := New(Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
