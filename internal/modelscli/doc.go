// Package modelscli implements the `novacron models` subcommands: offline
// evaluation and use of the analytics models in package models on files.
//
// It sits beside the streaming pipeline rather than in it: the pipeline
// runs the same models on live series, while these commands run them on
// CSV files (NAB layout for anomaly detection, M4 layout for forecasting),
// score the results with the published NAB and M4 rules, back-test
// forecasters and draw plots. All file I/O of the models lives here; the
// models package itself stays pure numeric code.
package modelscli
