package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

// progress draws a one-line progress bar on w (stderr); with quiet set it draws nothing.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	total int
	done  int
	start time.Time
	quiet bool
	ended bool
}

// newProgress draws on w only when w is a terminal (a log file gets no carriage-return
// noise) and quiet is not set.
func newProgress(w io.Writer, label string, total int, quiet bool) *progress {
	if f, ok := w.(*os.File); !ok || !(isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		quiet = true
	}
	p := &progress{w: w, label: label, total: total, start: time.Now(), quiet: quiet}
	p.draw()
	return p
}

// Set records n items done and redraws.
func (p *progress) Set(n int) {
	p.mu.Lock()
	p.done = n
	p.mu.Unlock()
	p.draw()
}

func (p *progress) draw() {
	if p.quiet || p.total <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	const width = 30
	filled := width * p.done / p.total
	el := time.Since(p.start).Seconds()
	rate := ""
	if el > 0.5 && p.done > 0 {
		rate = fmt.Sprintf(" %.2f/s", float64(p.done)/el)
	}
	fmt.Fprintf(p.w, "\r%-12s [%s%s] %d/%d%s ", p.label, strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.done, p.total, rate)
}

// Finish ends the line.
func (p *progress) Finish() { p.Abort() }

// Abort ends a drawn line so that what follows (an error) starts on its own line.
func (p *progress) Abort() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.quiet && p.total > 0 && !p.ended {
		fmt.Fprintln(p.w)
		p.ended = true
	}
}

// Clear erases the drawn line (before other output goes to the terminal).
func (p *progress) Clear() {
	if p.quiet || p.total <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", 72))
}
