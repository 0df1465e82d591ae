package modelscli

import (
	"context"
	"errors"
	"io"
)

func runForecast(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not yet")
}
func runScoreForecasts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not yet")
}
func runBacktest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not yet")
}
func runPlot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not yet")
}
