import { suiteOracle } from './suite-oracle';

suiteOracle('7', 'draft7');
