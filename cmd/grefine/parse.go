package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/grefine/grefine/pipeline/syntax"
)

func parseCommand() *cli.Command {
	return &cli.Command{
		Name:      "parse",
		Usage:     "split a prompt into parts, head nouns and ancestors (the AQ-Map's syntax tree)",
		ArgsUsage: "PROMPT",
		Description: "Prints each part of the prompt with its head noun and ancestor part (paper Algorithm 1).\n" +
			"With --json the output is exactly\n" +
			`  {"parts":[{"text":"sun glasses","noun":"glasses","start":3,"end":5,"ancestor":0}, ...]}` + "\n" +
			"where start/end are token indices (end exclusive) and ancestor is the index of the\n" +
			"ancestor part or -1.",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the parts as JSON"}},
		Action: action(1, func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("parse takes one PROMPT argument (quote it), got %d", c.NArg())
			}
			p, err := syntax.New(syntax.Options{})
			if err != nil {
				return err
			}
			res, err := p.Parse(c.Args().First())
			if err != nil {
				return fmt.Errorf("parse: %w", err)
			}
			if c.Bool("json") {
				b, err := res.JSON()
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, string(b))
				return nil
			}
			empty := true
			for _, part := range res.Parts {
				empty = empty && part.Text == ""
			}
			if empty {
				fmt.Fprintln(c.App.Writer, "no parts: the prompt has no words left after removing stopwords and punctuation")
				return nil
			}
			for i, part := range res.Parts {
				words := make([]string, 0, part.End-part.Start)
				for _, t := range res.Tokens[part.Start:part.End] {
					words = append(words, t.Text)
				}
				anc := "-"
				if part.Ancestor >= 0 {
					anc = fmt.Sprint(part.Ancestor)
				}
				fmt.Fprintf(c.App.Writer, "%d\t%q\tnoun=%q\tancestor=%s\ttokens=[%d,%d) %s\n", i, part.Text, part.Noun, anc, part.Start, part.End, strings.Join(words, " "))
			}
			return nil
		}),
	}
}
